package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Metrics of one mount, served by the metrics path in Prometheus' text
// format. Each backend instance (each mount; one plugin process serves many
// with ServeMultiplex) has its own registry, so mounts never mix, and
// nothing is registered globally. Counters start at 0 when the plugin
// process starts (Prometheus' rate() handles the reset); the live-keys
// gauge is read from the live-key counts (live_keys.go) at scrape time,
// so it is right after a restart too.

// Why an issue failed (the cause label of openai_keys_issue_failed_total).
const (
	failCap                 = "cap"
	failUpstreamAuth        = "upstream_auth"
	failUpstreamClient      = "upstream_client"
	failUpstreamUnavailable = "upstream_unavailable"
	failStorage             = "storage"
	failOther               = "other"
)

// storageErr marks a failed storage write of the issue path, so its
// failure is counted as storage.
type storageErr struct{ err error }

func (e *storageErr) Error() string { return e.err.Error() }
func (e *storageErr) Unwrap() error { return e.err }

// issueFailureCause classifies a failed create for the failed counter,
// using client_errors.go's classification as it is.
func issueFailureCause(err error) string {
	var se *storageErr
	var ue *upstreamErr
	switch {
	case errors.As(err, &se):
		return failStorage
	case isAuthError(err):
		return failUpstreamAuth
	case isClientError(err):
		return failUpstreamClient
	case errors.As(err, &ue):
		// Throttling, timeouts, 5xx, no answer.
		return failUpstreamUnavailable
	default:
		return failOther
	}
}

type metrics struct {
	registry *prometheus.Registry

	issued          *prometheus.CounterVec
	revoked         *prometheus.CounterVec
	failed          *prometheus.CounterVec
	rolledBack      prometheus.Counter
	swept           prometheus.Counter
	budgetRevokedC  *prometheus.CounterVec
	rotations       *prometheus.CounterVec
	liveKeys        *prometheus.GaugeVec
	upstreamLatency *prometheus.HistogramVec
	staticRotations *prometheus.CounterVec
	staticLiveKeys  *prometheus.GaugeVec

	// scrapeMu makes the live-keys gauge's reset and refill one step per
	// scrape.
	scrapeMu sync.Mutex
}

func newMetrics() *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openai_keys_issued_total", Help: "Keys issued, by role.",
	}, []string{"role"})
	m.revoked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openai_keys_revoked_total",
		Help: "Keys whose account was deleted and ledger entry marked revoked, by role and cause (revoke, expiry, rollback, tidy, budget).",
	}, []string{"role", "cause"})
	m.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openai_keys_issue_failed_total",
		Help: "Issues that returned no key, by cause (cap, upstream_auth, upstream_client, upstream_unavailable, storage, other).",
	}, []string{"cause"})
	m.rolledBack = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "openai_accounts_rolled_back_total", Help: "Service accounts deleted by WAL rollback of an interrupted issue.",
	})
	m.swept = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "openai_accounts_swept_total", Help: "Service accounts deleted by the orphan sweep (tidy).",
	})
	m.budgetRevokedC = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openai_budget_revocations_total", Help: "Keys revoked for exceeding their role's token budget, by role.",
	}, []string{"role"})
	m.rotations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openai_admin_key_rotations_total", Help: "Admin key rotations, by result (ok, failed).",
	}, []string{"result"})
	m.liveKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "openai_live_keys", Help: "Keys live on this mount now (issued, not revoked), by role.",
	}, []string{"role"})
	m.upstreamLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "openai_upstream_request_duration_seconds",
		Help: "Duration of one OpenAI Admin API call, retries included, by operation and status class (2xx, 4xx, 429, 5xx, error: no HTTP answer).",
		// From a fast answer to a call that used its whole retry budget.
		Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"operation", "status"})
	m.staticRotations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openai_static_rotations_total", Help: "Rotations of static roles' keys, by static role and result (ok, failed).",
	}, []string{"static_role", "result"})
	m.staticLiveKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "openai_static_live_keys", Help: "Keys of static roles the engine holds now (current and previous), by static role.",
	}, []string{"static_role"})
	m.registry.MustRegister(m.issued, m.revoked, m.failed, m.rolledBack, m.swept,
		m.budgetRevokedC, m.rotations, m.liveKeys, m.upstreamLatency, m.staticRotations, m.staticLiveKeys)
	// Failure causes exist from the start, so a rate over them is defined
	// before the first failure.
	for _, c := range []string{failCap, failUpstreamAuth, failUpstreamClient, failUpstreamUnavailable, failStorage, failOther} {
		m.failed.WithLabelValues(c)
	}
	m.rotations.WithLabelValues("ok")
	m.rotations.WithLabelValues("failed")
	return m
}

func (m *metrics) keyIssued(role string)         { m.issued.WithLabelValues(role).Inc() }
func (m *metrics) keyRevoked(role, cause string) { m.revoked.WithLabelValues(role, cause).Inc() }
func (m *metrics) issueFailed(cause string)      { m.failed.WithLabelValues(cause).Inc() }
func (m *metrics) accountRolledBack()            { m.rolledBack.Inc() }
func (m *metrics) accountSwept()                 { m.swept.Inc() }

// budgetRevoked counts a key revoked for exceeding its role's token
// budget; the budget enforcement calls it next to retireAccount with
// revokedByBudget (which counts the revocation itself, cause budget).
func (m *metrics) budgetRevoked(role string) { m.budgetRevokedC.WithLabelValues(role).Inc() }

func (m *metrics) rotation(err error) {
	if err != nil {
		m.rotations.WithLabelValues("failed").Inc()
		return
	}
	m.rotations.WithLabelValues("ok").Inc()
}

// revokeCauses are the revoked counter's cause labels, each created at 0
// for every role (see touchRole).
var revokeCauses = []string{revokedByRevoke, revokedByExpiry, revokedByRollback, revokedByTidy, revokedByBudget}

// touchRole creates a role's series at 0. A labelled series otherwise first
// appears at its first increment, and rate() or increase() in Prometheus
// never count that first event (the first issue of a role, its first budget
// revocation): a dashboard would miss it.
func (m *metrics) touchRole(role string) {
	m.issued.WithLabelValues(role)
	m.budgetRevokedC.WithLabelValues(role)
	for _, c := range revokeCauses {
		m.revoked.WithLabelValues(role, c)
	}
}

// staticRotation counts one rotation of a static role's key, scheduled or
// asked for.
func (m *metrics) staticRotation(role string, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.staticRotations.WithLabelValues(role, result).Inc()
}

// exposition renders every metric of the mount in the text format, with
// the live-keys gauges refilled from perRole and perStaticRole, and every
// role in roles and perStaticRole present (at 0 when nothing happened to it
// yet).
func (m *metrics) exposition(roles []string, perRole, perStaticRole map[string]int) ([]byte, error) {
	m.scrapeMu.Lock()
	defer m.scrapeMu.Unlock()
	m.liveKeys.Reset()
	for _, role := range roles {
		m.touchRole(role)
		m.liveKeys.WithLabelValues(role).Set(0)
	}
	for role, n := range perRole {
		m.liveKeys.WithLabelValues(role).Set(float64(n))
	}
	m.staticLiveKeys.Reset()
	for role, n := range perStaticRole {
		m.staticRotations.WithLabelValues(role, "ok")
		m.staticRotations.WithLabelValues(role, "failed")
		m.staticLiveKeys.WithLabelValues(role).Set(float64(n))
	}
	families, err := m.registry.Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func pathMetrics(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "metrics$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "metrics",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathMetricsRead,
				// Counters live in the active node's process, where issues,
				// revocations and the periodic function run.
				ForwardPerformanceStandby: true,
				Responses:                 metricsResponses(),
			},
		},
		HelpSynopsis:    "This mount's metrics in Prometheus' text format.",
		HelpDescription: pathMetricsHelp,
	}
}

const pathMetricsHelp = `
Answers Prometheus' text exposition format (a raw HTTP response, not JSON),
for this mount only:

  openai_keys_issued_total{role}
  openai_keys_revoked_total{role,cause}      cause: revoke, expiry, rollback, tidy, budget
  openai_keys_issue_failed_total{cause}      cause: cap, upstream_auth, upstream_client,
                                             upstream_unavailable, storage, other
  openai_accounts_rolled_back_total
  openai_accounts_swept_total
  openai_budget_revocations_total{role}
  openai_admin_key_rotations_total{result}   result: ok, failed
  openai_live_keys{role}                     gauge, at scrape time
  openai_upstream_request_duration_seconds{operation,status}   histogram
  openai_static_rotations_total{static_role,result}   result: ok, failed
  openai_static_live_keys{static_role}       gauge: current and previous key, at scrape time

Counters count from the plugin process's start (per node; standbys forward
the read to the active node). Scrape with a Vault token that may read this
path, in an "X-Vault-Token" or "Authorization: Bearer" header, at
/v1/<mount>/metrics.
`

func (b *backend) pathMetricsRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	perRole, err := b.liveKeys.perRoleCounts(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	roles, err := req.Storage.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, err
	}
	perStaticRole, err := staticLiveKeyCounts(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	body, err := b.metrics.exposition(roles, perRole, perStaticRole)
	if err != nil {
		return nil, fmt.Errorf("render metrics: %w", err)
	}
	return &logical.Response{Data: map[string]interface{}{
		logical.HTTPContentType: string(expfmt.NewFormat(expfmt.TypeTextPlain)),
		logical.HTTPRawBody:     body,
		logical.HTTPStatusCode:  http.StatusOK,
	}}, nil
}
