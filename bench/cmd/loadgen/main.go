// Command loadgen is the benchmark's load generator: a separate, light process
// that drives one HTTP target from N keep-alive clients and prints one JSON
// line with the count, errors, latency percentiles and its own CPU seconds
// (getrusage). The benchmark (bench/) builds it once per run and runs every
// request load through it, so the clients are neither in the measured
// processes nor their bottleneck.
//
// Per request it does only what is asserted: the status code, and with
// -expect a byte search of the body (for example for `"lease_id":"`). Bodies
// are encoded once; a path may carry {i}, replaced by a per-request sequence
// number (distinct KV keys). With -expire-at the body is {"ttl":"Ns"}, N the
// whole seconds left until that Unix time (at least 1): every lease ends in
// the same second.
//
// Credentials come from the environment, never the command line:
// LOADGEN_VAULT_TOKEN is sent as X-Vault-Token and LOADGEN_AUTHORIZATION as
// Authorization.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type result struct {
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
	P50MS      float64 `json:"p50_ms"`
	P90MS      float64 `json:"p90_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	MeanMS     float64 `json:"mean_ms"`
	CPUSeconds float64 `json:"cpu_s"` // user + system of this process over the measured part
	WarmupCPU  float64 `json:"warmup_cpu_s"`
}

func main() {
	var (
		url       = flag.String("url", "", "base URL, e.g. http://127.0.0.1:8200/v1/")
		path      = flag.String("path", "", "path appended to -url; {i} is replaced by a sequence number")
		method    = flag.String("method", http.MethodGet, "HTTP method")
		body      = flag.String("body", "", "request body (JSON), sent as is")
		expireAt  = flag.Int64("expire-at", 0, `Unix time: send {"ttl":"Ns"} ending each lease then`)
		clients   = flag.Int("clients", 1, "concurrent clients, each one keep-alive connection")
		count     = flag.Int("count", 1000, "requests to send after the warm-up (at most)")
		duration  = flag.Duration("duration", time.Minute, "stop claiming requests after this long")
		warmup    = flag.Bool("warmup", true, "one unmeasured request per client first (opens its connection)")
		status    = flag.Int("status", http.StatusOK, "expected status code")
		syncStart = flag.Bool("sync", false, `after the warm-up print "warm" and wait for a line on stdin`)
		seqStart  = flag.Int64("seq", time.Now().UnixNano()%1e12*1000, "first sequence number for {i}")
	)
	var expects [][]byte
	flag.Func("expect", "bytes the response body must contain (repeatable)", func(s string) error {
		expects = append(expects, []byte(s))
		return nil
	})
	flag.Parse()
	if *url == "" || *clients < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: -url and -clients >= 1 are required")
		os.Exit(2)
	}
	tr := &http.Transport{
		MaxIdleConns:        *clients * 2,
		MaxIdleConnsPerHost: *clients * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	token := os.Getenv("LOADGEN_VAULT_TOKEN")
	authz := os.Getenv("LOADGEN_AUTHORIZATION")
	bodyBytes := []byte(*body)
	prefix, suffix, templ := strings.Cut(*url+*path, "{i}")
	var seq atomic.Int64
	seq.Store(*seqStart)

	do := func(buf *bytes.Buffer) error {
		u := prefix
		if templ {
			u = prefix + strconv.FormatInt(seq.Add(1), 10) + suffix
		}
		var rd io.Reader
		switch {
		case *expireAt > 0:
			s := int64(math.Ceil(float64(*expireAt) - float64(time.Now().UnixNano())/1e9))
			rd = strings.NewReader(`{"ttl":"` + strconv.FormatInt(max(s, 1), 10) + `s"}`)
		case len(bodyBytes) > 0:
			rd = bytes.NewReader(bodyBytes)
		}
		req, err := http.NewRequest(*method, u, rd)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header["X-Vault-Token"] = []string{token}
		}
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		if rd != nil {
			req.Header["Content-Type"] = []string{"application/json"}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != *status {
			return fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, buf.Bytes())
		}
		for _, want := range expects {
			if !bytes.Contains(buf.Bytes(), want) {
				return fmt.Errorf("response lacks %q: %.300s", want, buf.Bytes())
			}
		}
		return nil
	}

	var res result
	var errs atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	cpu0 := cpuSeconds()
	var wg sync.WaitGroup
	if *warmup {
		for range *clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := do(new(bytes.Buffer)); err != nil {
					fail(err)
				}
			}()
		}
		wg.Wait()
	}
	if *syncStart {
		// The caller snapshots the other processes' CPU and Vault's
		// counters here, so they cover exactly the measured requests.
		fmt.Println("warm")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: waiting for the start line:", err)
			os.Exit(2)
		}
	}
	cpu1 := cpuSeconds()
	res.WarmupCPU = cpu1 - cpu0

	lats := make([]time.Duration, *count)
	var next, done atomic.Int64
	start := time.Now()
	deadline := start.Add(*duration)
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := new(bytes.Buffer)
			for {
				// Deadline before claiming an index, so claimed indexes have no gaps.
				if time.Now().After(deadline) {
					return
				}
				i := next.Add(1) - 1
				if i >= int64(*count) {
					return
				}
				t0 := time.Now()
				err := do(buf)
				lats[i] = time.Since(t0)
				done.Add(1)
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.CPUSeconds = cpuSeconds() - cpu1

	got := int(done.Load())
	lats = lats[:got]
	slices.Sort(lats)
	var sum time.Duration
	for _, l := range lats {
		sum += l
	}
	res.Requests, res.Errors = got, int(errs.Load())
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(got) / elapsed.Seconds()
	res.P50MS, res.P90MS, res.P99MS = ms(pct(lats, 0.50)), ms(pct(lats, 0.90)), ms(pct(lats, 0.99))
	if got > 0 {
		res.MaxMS = ms(lats[got-1])
		res.MeanMS = ms(sum / time.Duration(got))
	}
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// cpuSeconds is this process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
