package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// A recording is what a Prometheus server would have scraped: the engine's
// metrics exposition, verbatim, at each scrape time. It is kept as text so
// the picture can be re-rendered from it (main.go) and read by a person.
//
// File format: each scrape starts with a line "# scrape <unix ms>", followed
// by the body exactly as the metrics path answered it.
type Recording struct {
	Job      string
	Instance string
	Scrapes  []Scrape
}

// Scrape is one exposition body and when it was taken.
type Scrape struct {
	At   time.Time
	Body []byte
}

const scrapeMarker = "# scrape "

// Start and End are the times of the first and last scrape.
func (r *Recording) Start() time.Time { return r.Scrapes[0].At }
func (r *Recording) End() time.Time   { return r.Scrapes[len(r.Scrapes)-1].At }

// WriteFile stores the recording at path, gzipped when path ends in .gz.
func (r *Recording) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var w io.Writer = f
	var zw *gzip.Writer
	if strings.HasSuffix(path, ".gz") {
		zw = gzip.NewWriter(f)
		w = zw
	}
	err = r.Write(w)
	if zw != nil && err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Write stores the recording; job and instance go in a header line.
func (r *Recording) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# recording job=%s instance=%s\n", r.Job, r.Instance)
	for _, s := range r.Scrapes {
		fmt.Fprintf(bw, "%s%d\n", scrapeMarker, s.At.UnixMilli())
		bw.Write(s.Body)
		if len(s.Body) > 0 && s.Body[len(s.Body)-1] != '\n' {
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

// ReadRecording parses what Write stored, gzipped or not.
func ReadRecording(path string) (*Recording, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	header, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok || !bytes.HasPrefix(header, []byte("# recording ")) {
		return nil, fmt.Errorf("%s: not a recording (no \"# recording\" header)", path)
	}
	r := &Recording{}
	for _, f := range strings.Fields(string(header[len("# recording "):])) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "job":
			r.Job = v
		case "instance":
			r.Instance = v
		}
	}
	for len(rest) > 0 {
		line, after, _ := bytes.Cut(rest, []byte("\n"))
		if !bytes.HasPrefix(line, []byte(scrapeMarker)) {
			return nil, fmt.Errorf("%s: expected %q, got %q", path, scrapeMarker, line)
		}
		ms, err := strconv.ParseInt(string(line[len(scrapeMarker):]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: scrape time %q: %w", path, line, err)
		}
		body := after
		if i := bytes.Index(after, []byte("\n"+scrapeMarker)); i >= 0 {
			body, after = after[:i+1], after[i+1:]
		} else {
			after = nil
		}
		r.Scrapes = append(r.Scrapes, Scrape{At: time.UnixMilli(ms), Body: body})
		rest = after
	}
	if len(r.Scrapes) < 2 {
		return nil, fmt.Errorf("%s: %d scrapes, a rate needs at least 2", path, len(r.Scrapes))
	}
	return r, nil
}

// Scraper reads a mount's metrics path with a Vault token, as the README's
// scrape config does.
type Scraper struct {
	URL    string // e.g. http://127.0.0.1:8200/v1/openai/metrics
	Token  string
	Client *http.Client
}

// Scrape takes one sample of the metrics path.
func (s *Scraper) Scrape(ctx context.Context) (Scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return Scrape{}, err
	}
	req.Header.Set("X-Vault-Token", s.Token)
	at := time.Now()
	resp, err := s.Client.Do(req)
	if err != nil {
		return Scrape{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return Scrape{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Scrape{}, fmt.Errorf("GET %s: %d %s", s.URL, resp.StatusCode, bytes.TrimSpace(body))
	}
	if len(body) == 0 {
		return Scrape{}, errors.New("GET " + s.URL + ": empty body")
	}
	return Scrape{At: at, Body: body}, nil
}
