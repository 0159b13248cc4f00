package backend

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// scrape reads the metrics path as Vault would serve it and parses the
// exposition.
func (e *testEnv) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	resp := e.mustOK(logical.ReadOperation, "metrics", nil)
	if resp.Data[logical.HTTPStatusCode] != http.StatusOK || !strings.HasPrefix(resp.Data[logical.HTTPContentType].(string), "text/plain") {
		e.t.Fatalf("metrics response: status %v, content type %v", resp.Data[logical.HTTPStatusCode], resp.Data[logical.HTTPContentType])
	}
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(resp.Data[logical.HTTPRawBody].([]byte)))
	if err != nil {
		e.t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// metricValue is the value of the family's metric with exactly labels
// (0 when absent); a histogram answers its sample count.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.GetMetric() {
		match := true
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

func TestMetrics_CountersMatchTheOperationsPerformed(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("a", map[string]interface{}{"max_live_keys": 3, "ttl": "1h", "max_ttl": "1h"})
	e.writeRole("b", map[string]interface{}{})
	as := e.issueN("a", 3)
	e.issueN("b", 2)
	e.mustBadRequest(logical.UpdateOperation, "creds/a", nil, "max_live_keys") // cap
	e.revokeLease(as[0], time.Now(), time.Hour, "")                            // revoke
	e.revokeLease(as[1], time.Now().Add(-time.Hour), time.Hour, "")            // expiry
	e.ageRecord(saID(as[2]), staleBy)
	e.tidy(nil) // sweeps as[2]
	if _, err := e.rotate(); err != nil {
		t.Fatal(err)
	}
	// An upstream refusal: the project is archived.
	e.writeRole("archived", map[string]interface{}{})
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.Fault403, Rate: 1}}})
	if _, err := e.issueAs("archived", "token-x"); err == nil {
		t.Fatal("issue succeeded through a 403")
	}
	e.fake.SetFaults(fakeopenai.Faults{})

	fams := e.scrape()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"openai_keys_issued_total", map[string]string{"role": "a"}, 3},
		{"openai_keys_issued_total", map[string]string{"role": "b"}, 2},
		{"openai_keys_revoked_total", map[string]string{"role": "a", "cause": "revoke"}, 1},
		{"openai_keys_revoked_total", map[string]string{"role": "a", "cause": "expiry"}, 1},
		{"openai_keys_revoked_total", map[string]string{"role": "a", "cause": "tidy"}, 1},
		{"openai_keys_issue_failed_total", map[string]string{"cause": "cap"}, 1},
		{"openai_keys_issue_failed_total", map[string]string{"cause": "upstream_auth"}, 1},
		{"openai_keys_issue_failed_total", map[string]string{"cause": "storage"}, 0},
		{"openai_accounts_swept_total", nil, 1},
		{"openai_accounts_rolled_back_total", nil, 0},
		{"openai_admin_key_rotations_total", map[string]string{"result": "ok"}, 1},
		{"openai_admin_key_rotations_total", map[string]string{"result": "failed"}, 0},
		{"openai_live_keys", map[string]string{"role": "a"}, 0},
		{"openai_live_keys", map[string]string{"role": "b"}, 2},
		{"openai_upstream_request_duration_seconds", map[string]string{"operation": "create_service_account", "status": "2xx"}, 5},
		{"openai_upstream_request_duration_seconds", map[string]string{"operation": "delete_service_account", "status": "2xx"}, 3},
	} {
		if got := metricValue(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if metricValue(fams, "openai_upstream_request_duration_seconds", map[string]string{"operation": "create_service_account", "status": "4xx"}) < 1 {
		t.Error("the refused create is not in the latency histogram")
	}
	e.b.metrics.budgetRevoked("b")
	if got := metricValue(e.scrape(), "openai_budget_revocations_total", map[string]string{"role": "b"}); got != 1 {
		t.Errorf("budget revocations %v, want 1", got)
	}

	// Another mount of the same process counts only its own.
	other := newTestEnv(t)
	other.configure()
	if got := metricValue(other.scrape(), "openai_keys_issued_total", nil); got != 0 {
		t.Fatalf("a second mount sees %v issued keys", got)
	}
}

func TestMetrics_RolledBackAccountsAreCounted(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.scriptedCreates(func(n int) string {
		if n == 1 {
			return "created-500"
		}
		return "401"
	})
	if _, err := e.issueAs("app", "token-x"); err == nil {
		t.Fatal("issue succeeded")
	}
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"base_url": e.url})
	e.rollbackNow()
	fams := e.scrape()
	if got := metricValue(fams, "openai_accounts_rolled_back_total", nil); got != 1 {
		t.Fatalf("rolled back %v, want 1", got)
	}
	if got := metricValue(fams, "openai_keys_issue_failed_total", map[string]string{"cause": "upstream_auth"}); got != 1 {
		t.Fatalf("failed issues %v", got)
	}
}

// A role's counters exist at 0 from the first scrape after the role is
// written, so Prometheus' rate() and increase() count its first issue,
// revocation and budget revocation (a series born at 1 counts nothing).
func TestMetrics_RoleSeriesExistAtZeroBeforeTheirFirstEvent(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("fresh", map[string]interface{}{})
	fams := e.scrape()
	has := func(name string, labels map[string]string) bool {
		for _, m := range fams[name].GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			match := len(got) == len(labels)
			for k, v := range labels {
				match = match && got[k] == v
			}
			if match {
				return true
			}
		}
		return false
	}
	want := []struct {
		name   string
		labels map[string]string
	}{
		{"openai_keys_issued_total", map[string]string{"role": "fresh"}},
		{"openai_budget_revocations_total", map[string]string{"role": "fresh"}},
		{"openai_live_keys", map[string]string{"role": "fresh"}},
	}
	for _, c := range revokeCauses {
		want = append(want, struct {
			name   string
			labels map[string]string
		}{"openai_keys_revoked_total", map[string]string{"role": "fresh", "cause": c}})
	}
	for _, w := range want {
		if !has(w.name, w.labels) {
			t.Errorf("no series %s%v before any event", w.name, w.labels)
		} else if v := metricValue(fams, w.name, w.labels); v != 0 {
			t.Errorf("%s%v = %v before any event", w.name, w.labels, v)
		}
	}
	e.issueN("fresh", 1)
	if v := metricValue(e.scrape(), "openai_keys_issued_total", map[string]string{"role": "fresh"}); v != 1 {
		t.Errorf("issued after one issue = %v, want 1", v)
	}
}
