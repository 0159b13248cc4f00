package bench

// Running the load generator (cmd/loadgen): built once per run, started once
// per measured load, its one-line JSON result read back. Between its warm-up
// and its measured requests it waits for a line on stdin, so the CPU of the
// other processes and Vault's storage counters are read around exactly the
// measured requests.

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadgenBin is cmd/loadgen, built once per test (a benchmark run).
func loadgenBin(t *testing.T) string {
	t.Helper()
	return benchCommand(t, "loadgen")
}

// loadTarget is one request the generator repeats.
type loadTarget struct {
	URL, Path, Method, Body string
	Status                  int
	Expect                  []string
	VaultToken, Authz       string
	ExpireAt                time.Time // non-zero: body {"ttl":"Ns"} ending each lease then
}

// loadResult is the generator's output line.
type loadResult struct {
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
	CPUSeconds float64 `json:"cpu_s"`
	WarmupCPU  float64 `json:"warmup_cpu_s"`
}

// runLoad runs the generator on tg from clients connections, one warm-up
// request each, then up to count requests or for at most d. before and
// after, if set, are called after the warm-up and once the measured requests
// are done, to read the other processes' counters.
func runLoad(t *testing.T, tg loadTarget, clients, count int, d time.Duration, before, after func()) loadResult {
	t.Helper()
	args := []string{
		"-url", tg.URL, "-path", tg.Path, "-method", tg.Method,
		"-clients", strconv.Itoa(clients), "-count", strconv.Itoa(count), "-duration", d.String(),
		"-status", strconv.Itoa(max(tg.Status, 200)), "-sync",
	}
	if tg.Body != "" {
		args = append(args, "-body", tg.Body)
	}
	if !tg.ExpireAt.IsZero() {
		args = append(args, "-expire-at", strconv.FormatInt(tg.ExpireAt.Unix(), 10))
	}
	for _, e := range tg.Expect {
		args = append(args, "-expect", e)
	}
	cmd := exec.Command(loadgenBin(t), args...)
	cmd.Env = append(os.Environ(), "LOADGEN_VAULT_TOKEN="+tg.VaultToken, "LOADGEN_AUTHORIZATION="+tg.Authz, "GOGC=400")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the load generator: %v", err)
	}
	rd := bufio.NewReader(stdout)
	line, err := rd.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "warm" {
		_ = cmd.Wait()
		t.Fatalf("load generator on %s: no warm-up line (%q, %v): %s", tg.Path, line, err, stderr.String())
	}
	if before != nil {
		before()
	}
	if _, err := stdin.Write([]byte("\n")); err != nil {
		t.Fatalf("load generator: %v", err)
	}
	line, err = rd.ReadString('\n')
	if after != nil {
		after()
	}
	if werr := cmd.Wait(); werr != nil || err != nil {
		t.Fatalf("load generator on %s: %v %v: %s", tg.Path, err, werr, stderr.String())
	}
	var res loadResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("load generator output %q: %v", line, err)
	}
	return res
}

// checkLoadgen proves the generator against a local server before the
// benchmark trusts it: every request counted, the token and body sent, a
// wrong status or a missing expected string counted as an error (warm-up
// requests included), and {i} giving each request its own path.
func checkLoadgen(t *testing.T) {
	t.Helper()
	var mu sync.Mutex
	paths := map[string]bool{}
	var bad int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths[r.URL.Path] = true
		if r.Header.Get("X-Vault-Token") != "tok" || string(b) != `{"a":1}` || r.Method != http.MethodPost {
			bad++
		}
		mu.Unlock()
		_, _ = w.Write([]byte(`{"lease_id":"x/1","data":{}}`))
	}))
	defer srv.Close()
	tg := loadTarget{URL: srv.URL + "/v1/", Path: "kv/{i}", Method: http.MethodPost, Body: `{"a":1}`, VaultToken: "tok", Expect: []string{`"lease_id":"x/`}}
	res := runLoad(t, tg, 4, 40, time.Minute, nil, nil)
	if res.Requests != 40 || res.Errors != 0 || len(paths) != 44 || bad != 0 || res.P50MS <= 0 {
		t.Errorf("load generator: %d requests (want 40), %d errors (want 0), %d distinct paths (want 44), %d requests without token or body; result %+v", res.Requests, res.Errors, len(paths), bad, res)
	}
	tg.Expect = []string{"absent"}
	if res := runLoad(t, tg, 2, 10, time.Minute, nil, nil); res.Errors != 12 || !strings.Contains(res.FirstError, "absent") {
		t.Errorf("load generator with an unmet -expect: %d errors (want 12), first %q", res.Errors, res.FirstError)
	}
	tg.Expect, tg.Status = nil, http.StatusNoContent
	if res := runLoad(t, tg, 2, 10, time.Minute, nil, nil); res.Errors != 12 || !strings.Contains(res.FirstError, "HTTP 200") {
		t.Errorf("load generator with a wrong status: %d errors (want 12), first %q", res.Errors, res.FirstError)
	}
}
