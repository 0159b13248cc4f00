package backend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// TestModel_LeasesAndAccountsStayConsistent is issue 9's randomized model
// test. A seeded random walk of thousands of steps (issue, lost create
// responses, 429 and 5xx on create and delete, retries, WAL rollback, tidy,
// the periodic sweep, renew, revoke, config rewrites with and without force,
// config delete, rotation, rotation in the middle of a create or delete)
// drives the backend through HandleRequest against two in-process fakes,
// two "organizations": A holds the roles' projects, B does not. After every
// step it checks
//
//	(a) no account owned by a live lease (issued, never sent a revoke) is gone;
//	(b) no lease whose revoke reported success still has its account;
//	(e) a config write or delete without force that would leave live keys
//	    unrevocable (their projects invisible, or no admin key) is refused;
//	(f) every live lease's account record exists, and for a lease whose key
//	    follows it (expiry_follows_lease), the record's key expiry is not
//	    before the lease's end (else tidy could delete a live lease's
//	    account) and, unless its last renewal failed, neither is the key's
//	    expiry at OpenAI;
//
// and at quiescent points (every modelQuiesceEvery steps and at the end),
// with OpenAI healthy and config back on A, after one WAL rollback:
//
//	(c) every account in the roles' projects belongs to a lease the test holds;
//	(d) that rollback succeeded and left no WAL entry.
//
// Finally every lease is revoked, which must succeed and leave no account
// and no record behind.
//
// MODEL_SEED (default modelDefaultSeed), MODEL_STEPS (default
// modelDefaultSteps) and MODEL_RUNS (seeds MODEL_SEED, MODEL_SEED+1, ...)
// select the walk; a failure prints the seed, the step and the last steps.
// MODEL_WITHOUT (comma-separated: org-b, config-delete, mid-call-rotation,
// long-names, tiny-names, scopes) leaves a kind of step out, to see what fails
// next once the first failure is understood.
// The walk (steps, faults, choices) is a function of the seed; the names and
// ids the engine and the fake draw at random are not, so a failure that
// depends on a name collision reproduces at about, not exactly, the same step.
func TestModel_LeasesAndAccountsStayConsistent(t *testing.T) {
	seed := uint64(modelDefaultSeed)
	steps := modelDefaultSteps
	runs := 1
	if v := os.Getenv("MODEL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("MODEL_SEED=%q: %v", v, err)
		}
		seed = n
	}
	for name, dst := range map[string]*int{"MODEL_STEPS": &steps, "MODEL_RUNS": &runs} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive integer", name, v)
			}
			*dst = n
		}
	}
	if testing.Short() && os.Getenv("MODEL_STEPS") == "" {
		steps = modelShortSteps
	}
	for i := 0; i < runs; i++ {
		s := seed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			m := newModel(t, s, steps)
			m.run()
		})
	}
}

const (
	modelDefaultSeed  = 9009
	modelDefaultSteps = 2000
	modelShortSteps   = 300 // with -short
	modelQuiesceEvery = 100
	// modelMaxHeld bounds the leases held at once, so listings stay short.
	modelMaxHeld = 40

	modelProjectA = "proj_model_a"
	modelProjectB = "proj_model_b"
)

// modelLongDisplayName is the length of a Kubernetes service-account token's
// display name (issue 9, defect 1: 84 characters).
var modelLongDisplayName = func() string {
	s := "kubernetes-payments-production-namespace-payments-api-worker-service-account"
	for len(s) < 84 {
		s += "x"
	}
	return s
}()

// modelLongRole is a 32-character role name for the colliding template.
const modelLongRole = "model-long-role-name-abcdefghijk"

type modelLeaseState int

const (
	leaseLive     modelLeaseState = iota // issued; no revoke sent yet
	leaseRevoking                        // a revoke failed; Vault would retry it
	leaseRevoked                         // a revoke reported success
)

type modelLease struct {
	n         int // issue order, for the step log
	role      string
	secret    *logical.Secret
	issued    time.Time
	projectID string
	saID      string
	keyID     string
	state     modelLeaseState
	// follows: the lease's key expiry follows it; end is the lease's end
	// as last granted; keyUncertain: the last renewal failed, so OpenAI may
	// hold the expiry that renewal asked for (a lost answer).
	follows      bool
	end          time.Time
	keyUncertain bool
	scopes       []string // the key's, as issued
}

func (l *modelLease) String() string {
	return fmt.Sprintf("lease#%d(%s %s)", l.n, l.role, l.saID)
}

type modelOrg struct {
	name string
	fake *fakeopenai.Server
	url  string
	// supplied holds the admin keys the test wrote to config (id -> value),
	// deleted by hand once config no longer uses them, as an operator
	// would; otherwise thousands pile up and every listing slows.
	supplied map[string]string
}

type model struct {
	t     *testing.T
	seed  uint64
	steps int
	rng   *rand.Rand

	b       *backend
	storage logical.Storage
	up      *modelUpstream
	orgA    *modelOrg
	orgB    *modelOrg
	target  string // "A", "B" or "" (no config), as read back from config
	roles   []string

	leases  []*modelLease
	nIssued int
	step    int
	stepLog []string
	notesMu sync.Mutex
	notes   []string // things that happened inside a step (mid-call rotation)
	engine  *modelLogRing
	stats   map[string]int
	without map[string]bool // MODEL_WITHOUT
	took    map[string]time.Duration
}

func newModel(t *testing.T, seed uint64, steps int) *model {
	m := &model{
		t: t, seed: seed, steps: steps,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		up:      newModelUpstream(),
		engine:  &modelLogRing{},
		stats:   map[string]int{},
		without: map[string]bool{},
		took:    map[string]time.Duration{},
	}
	for _, w := range strings.Split(os.Getenv("MODEL_WITHOUT"), ",") {
		if w = strings.TrimSpace(w); w != "" {
			m.without[w] = true
		}
	}
	newOrg := func(name string, projects ...string) *modelOrg {
		fake := fakeopenai.New(fakeopenai.Options{})
		fake.FailOnViolations(t)
		for _, p := range projects {
			fake.AddProject(p, "Model project "+p, "active")
		}
		srv := httptest.NewServer(m.up.handler(fake))
		t.Cleanup(srv.Close)
		return &modelOrg{name: name, fake: fake, url: srv.URL + "/v1", supplied: map[string]string{}}
	}
	m.orgA = newOrg("A", modelProjectA, modelProjectB)
	m.orgB = newOrg("B") // sees neither project: another organization

	conf := logical.TestBackendConfig()
	m.storage = &logical.InmemStorage{}
	conf.StorageView = m.storage
	conf.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: m.engine})
	conf.System = &logical.StaticSystemView{DefaultLeaseTTLVal: testDefaultLeaseTTL, MaxLeaseTTLVal: testMaxLeaseTTL}
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	m.b = raw.(*backend)
	m.up.rotate = func() {
		err := m.call(logical.UpdateOperation, "config/rotate-root", nil, "")
		m.note("mid-call rotate-root: %s", outcome(err))
	}

	if err := m.writeConfig(m.orgA, false); err != nil {
		t.Fatalf("initial config: %v", err)
	}
	m.syncTarget()
	m.setupRoles()
	return m
}

func (m *model) setupRoles() {
	type role struct {
		name string
		data map[string]interface{}
	}
	roles := []role{
		{"model-plain", map[string]interface{}{"project_id": modelProjectA, "ttl": "10m", "max_ttl": "1h"}},
		// Keys at max_ttl, renewals without a call.
		{"model-other", map[string]interface{}{"project_id": modelProjectB, "ttl": "10m", "max_ttl": "1h", "expiry_follows_lease": false}},
		// Two calls per issue: a bare account, then its scoped key.
		{"model-scoped", map[string]interface{}{"project_id": modelProjectA, "scopes": "api.model.read,api.responses.write", "ttl": "10m", "max_ttl": "1h"}},
		// 62 possible names: collisions between leases are common.
		{"model-tiny", map[string]interface{}{"project_id": modelProjectA, "name_template": "svc-{{ random 1 }}", "ttl": "10m", "max_ttl": "1h"}},
		// With an 84-character display name, shortening cuts the random
		// part out: every call renders the same name (issue 9, defect 1).
		{modelLongRole, map[string]interface{}{"project_id": modelProjectA, "name_template": "{{ .DisplayName }}-{{ random 8 }}-{{ .RoleName }}", "ttl": "10m", "max_ttl": "1h"}},
	}
	for _, r := range roles {
		if (r.name == modelLongRole && m.without["long-names"]) || (r.name == "model-tiny" && m.without["tiny-names"]) ||
			(r.name == "model-scoped" && m.without["scopes"]) {
			continue
		}
		var err error
		// validate renders the tiny template twice; 1 in 62 it repeats.
		for try := 0; try < 5; try++ {
			if err = m.call(logical.UpdateOperation, "roles/"+r.name, r.data, ""); err == nil {
				break
			}
		}
		if err != nil {
			// A stricter engine may refuse a template outright; the
			// walk goes on without that role and says so.
			m.t.Logf("role %s not written (%v); the walk runs without it", r.name, err)
			continue
		}
		m.roles = append(m.roles, r.name)
	}
	if len(m.roles) == 0 {
		m.t.Fatal("no role could be written")
	}
}

// call runs one request; an error response is returned as an error.
func (m *model) call(op logical.Operation, path string, data map[string]interface{}, displayName string) error {
	_, err := m.callResp(op, path, data, displayName)
	return err
}

func (m *model) callResp(op logical.Operation, path string, data map[string]interface{}, displayName string) (*logical.Response, error) {
	if displayName == "" {
		displayName = "token-model"
	}
	resp, err := m.b.HandleRequest(context.Background(), &logical.Request{
		Operation:     op,
		Path:          path,
		Data:          data,
		Storage:       m.storage,
		DisplayName:   displayName,
		MountAccessor: "openai_model",
		MountPoint:    "openai/",
	})
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	return resp, err
}

func (m *model) secretOp(op logical.Operation, s *logical.Secret) error {
	resp, err := m.b.HandleRequest(context.Background(), &logical.Request{Operation: op, Storage: m.storage, Secret: s})
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	return err
}

func (m *model) rollback(immediate bool) error {
	req := &logical.Request{Operation: logical.RollbackOperation, Storage: m.storage, Data: map[string]interface{}{}}
	if immediate {
		// Every WAL entry, whatever its age: no request is in flight
		// between steps, so this is what Vault's tick does once the
		// entries are old enough.
		req.Data["immediate"] = true
	}
	resp, err := m.b.HandleRequest(context.Background(), req)
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	return err
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + modelRedact(err.Error())
}

// note records something that happened inside the current step; it may be
// called from the fake's handler goroutine.
func (m *model) note(format string, args ...interface{}) {
	m.notesMu.Lock()
	m.notes = append(m.notes, fmt.Sprintf(format, args...))
	m.notesMu.Unlock()
}

func (m *model) logStep(format string, args ...interface{}) {
	line := fmt.Sprintf("step %d: ", m.step) + fmt.Sprintf(format, args...)
	m.notesMu.Lock()
	if len(m.notes) > 0 {
		line += " [" + strings.Join(m.notes, "; ") + "]"
		m.notes = nil
	}
	m.notesMu.Unlock()
	m.stepLog = append(m.stepLog, modelRedact(line))
	if len(m.stepLog) > 30 {
		m.stepLog = m.stepLog[len(m.stepLog)-30:]
	}
}

// fail stops the run with everything needed to reproduce it.
func (m *model) fail(format string, args ...interface{}) {
	m.t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "model invariant violated at step %d of seed %d: %s\n", m.step, m.seed, modelRedact(fmt.Sprintf(format, args...)))
	fmt.Fprintf(&sb, "reproduce: MODEL_SEED=%d MODEL_STEPS=%d go test -race -count=1 -run 'TestModel_' ./backend/\n", m.seed, m.steps)
	fmt.Fprintf(&sb, "last steps:\n  %s\n", strings.Join(m.stepLog, "\n  "))
	fmt.Fprintf(&sb, "last engine log lines:\n  %s", strings.Join(m.engine.tail(), "\n  "))
	m.t.Fatal(sb.String())
}

func (m *model) pick(weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := m.rng.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func (m *model) held() []*modelLease {
	var out []*modelLease
	for _, l := range m.leases {
		if l.state != leaseRevoked {
			out = append(out, l)
		}
	}
	return out
}

func (m *model) leasesIn(state modelLeaseState) []*modelLease {
	var out []*modelLease
	for _, l := range m.leases {
		if l.state == state {
			out = append(out, l)
		}
	}
	return out
}

func (m *model) run() {
	start := time.Now()
	for m.step = 1; m.step <= m.steps; m.step++ {
		m.up.clearPlans()
		m.randomStep()
		m.up.clearPlans()
		m.checkInvariants()
		if m.step%modelQuiesceEvery == 0 {
			m.quiesce()
		}
		if m.step%5000 == 0 {
			m.t.Logf("seed %d: %d of %d steps done, %s", m.seed, m.step, m.steps, time.Since(start).Round(time.Second))
		}
	}
	m.step = m.steps + 1
	m.quiesce()
	m.drain()
	keys := make([]string, 0, len(m.stats))
	for k := range m.stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m.stats[k]))
	}
	for _, k := range []string{"issue", "revoke", "renew", "rollback", "tick", "tidy", "config", "rotate"} {
		parts = append(parts, fmt.Sprintf("time_%s=%s", k, m.took[k].Round(time.Millisecond)))
	}
	m.up.mu.Lock()
	for f := mfOK + 1; f <= mfDone502Rotate; f++ {
		parts = append(parts, fmt.Sprintf("fault_%s=%d", f, m.up.injected[f]))
	}
	m.up.mu.Unlock()
	m.t.Logf("seed %d: %d steps in %s; %s", m.seed, m.steps, time.Since(start).Round(time.Millisecond), strings.Join(parts, " "))
}

func (m *model) randomStep() {
	held := m.held()
	wIssue, wRevoke, wRenew := 30, 20, 7
	if len(held) >= modelMaxHeld {
		wIssue = 0
	}
	if len(held) == 0 {
		wRevoke, wRenew = 0, 0
	}
	kinds := []struct {
		name string
		fn   func()
	}{
		{"issue", m.stepIssue}, {"revoke", m.stepRevoke}, {"renew", m.stepRenew}, {"rollback", m.stepRollback},
		{"tick", m.stepTick}, {"tidy", m.stepTidy}, {"config", m.stepConfig}, {"rotate", m.stepRotate},
	}
	wConfig := 12
	if m.target != "A" {
		wConfig = 20 // leave organization B or a deleted config sooner
	}
	k := kinds[m.pick(wIssue, wRevoke, wRenew, 10, 5, 6, wConfig, 6)]
	start := time.Now()
	k.fn()
	m.took[k.name] += time.Since(start)
}

// Fault plans. Each lists what successive attempts of one call meet.

func (m *model) createPlan() []modelFault {
	switch m.pick(40, 10, 6, 8, 8, 4, 4, 2, 1, 3, 4, 4) {
	case 1:
		return []modelFault{mf429}
	case 2:
		return []modelFault{mf429, mf429}
	case 3:
		return []modelFault{mf500}
	case 4:
		return []modelFault{mfDone502} // lost create response
	case 5:
		return []modelFault{mfDone502, mf429}
	case 6:
		return []modelFault{mf429, mfDone502}
	case 7:
		return []modelFault{mfLost}
	case 8:
		return []modelFault{mfDrop}
	case 9:
		return []modelFault{m.midCallRotation()}
	case 10:
		return repeatFault(mf500, 6) // outlasts max_retries: the issue fails
	case 11:
		return repeatFault(mfDone502, 6) // every attempt creates, none answers
	}
	return nil
}

// keyPlan is for the second call of a scoped issue, the key create.
func (m *model) keyPlan() []modelFault {
	switch m.pick(60, 8, 8, 6, 4, 2, 3, 3) {
	case 1:
		return []modelFault{mf429}
	case 2:
		return []modelFault{mf500}
	case 3:
		return []modelFault{mfDone502} // a twin key on the account
	case 4:
		return []modelFault{mfLost}
	case 5:
		return []modelFault{m.midCallRotation()}
	case 6:
		return repeatFault(mf500, 6) // the issue fails after the bare account exists
	case 7:
		return repeatFault(mfDone502, 6)
	}
	return nil
}

// updatePlan is for a renewal's key update.
func (m *model) updatePlan() []modelFault {
	switch m.pick(60, 10, 10, 5, 5, 3, 4) {
	case 1:
		return []modelFault{mf429}
	case 2:
		return []modelFault{mf500}
	case 3:
		return []modelFault{mfLost}
	case 4:
		return []modelFault{mfDone502}
	case 5:
		return []modelFault{m.midCallRotation()}
	case 6:
		return repeatFault(mf500, 6) // the renewal fails
	}
	return nil
}

func (m *model) deletePlan() []modelFault {
	switch m.pick(50, 10, 8, 10, 5, 1, 5, 4) {
	case 1:
		return []modelFault{mf429}
	case 2:
		return []modelFault{mf500}
	case 3:
		return []modelFault{mfDone502} // deleted, answer lost: the retry meets 404
	case 4:
		return []modelFault{m.midCallRotation()}
	case 5:
		return []modelFault{mfLost}
	case 6:
		return repeatFault(mf500, 15) // outlasts every retry floor: the call fails
	case 7:
		return repeatFault(mf429, 3)
	}
	return nil
}

func (m *model) listPlan() []modelFault {
	switch m.pick(70, 10, 10, 5) {
	case 1:
		return []modelFault{mf429}
	case 2:
		return []modelFault{mf500}
	case 3:
		return repeatFault(mf500, 6)
	}
	return nil
}

func (m *model) midCallRotation() modelFault {
	if m.without["mid-call-rotation"] {
		return mfDone502
	}
	return mfDone502Rotate
}

func repeatFault(f modelFault, n int) []modelFault {
	out := make([]modelFault, n)
	for i := range out {
		out[i] = f
	}
	return out
}

func planString(p []modelFault) string {
	if len(p) == 0 {
		return "-"
	}
	if len(p) > 3 && p[0] == p[len(p)-1] {
		return fmt.Sprintf("%sx%d", p[0], len(p))
	}
	s := make([]string, len(p))
	for i, f := range p {
		s[i] = f.String()
	}
	return strings.Join(s, ",")
}

// Steps.

func (m *model) stepIssue() {
	role := m.roles[m.rng.IntN(len(m.roles))]
	dn, dnLabel := "token-model", "short"
	if m.rng.IntN(2) == 0 {
		dn, dnLabel = modelLongDisplayName, "long84"
	}
	plan, keyPlan := m.createPlan(), m.keyPlan()
	m.up.setPlan(fakeopenai.OpCreateServiceAccount, plan...)
	m.up.setPlan(fakeopenai.OpCreateServiceAccountKey, keyPlan...)
	var data map[string]interface{}
	narrowed := role == "model-scoped" && m.rng.IntN(3) == 0
	if narrowed {
		data = map[string]interface{}{"scopes": "api.model.read"}
	}
	start := time.Now()
	resp, err := m.callResp(logical.UpdateOperation, "creds/"+role, data, dn)
	if err != nil {
		m.stats["issue_failed"]++
		m.logStep("issue role=%s dn=%s create=%s key=%s (config %q) -> %s", role, dnLabel, planString(plan), planString(keyPlan), m.target, outcome(err))
		return
	}
	if resp == nil || resp.Secret == nil {
		m.fail("issue role=%s returned no secret", role)
	}
	saID, _ := resp.Data["service_account_id"].(string)
	projectID, _ := resp.Data["project_id"].(string)
	if saID == "" || projectID == "" {
		m.fail("issue role=%s returned no service_account_id or project_id", role)
	}
	m.nIssued++
	s := *resp.Secret
	s.IssueTime = time.Now()
	if got, _ := resp.Data["scopes"].([]string); narrowed && !slices.Equal(got, []string{"api.model.read"}) {
		m.fail("issue role=%s narrowed to api.model.read returned scopes %v", role, got)
	}
	keyID, _ := resp.Data["api_key_id"].(string)
	follows, _ := s.InternalData["expiry_follows_lease"].(bool)
	l := &modelLease{n: m.nIssued, role: role, secret: &s, issued: s.IssueTime, projectID: projectID, saID: saID, keyID: keyID,
		follows: follows, end: start.Add(s.TTL)}
	l.scopes, _ = resp.Data["scopes"].([]string)
	m.leases = append(m.leases, l)
	m.stats["issue_ok"]++
	m.logStep("issue role=%s dn=%s create=%s key=%s (config %q) -> ok %s name=%v", role, dnLabel, planString(plan), planString(keyPlan), m.target, l, resp.Data["service_account_name"])
}

func (m *model) stepRevoke() {
	// Prefer leases whose revoke failed: Vault retries those.
	var l *modelLease
	if rev := m.leasesIn(leaseRevoking); len(rev) > 0 && m.rng.IntN(3) == 0 {
		l = rev[m.rng.IntN(len(rev))]
	} else {
		h := m.held()
		l = h[m.rng.IntN(len(h))]
	}
	plan := m.deletePlan()
	m.up.setPlan(fakeopenai.OpDeleteServiceAccount, plan...)
	err := m.secretOp(logical.RevokeOperation, l.secret)
	if err != nil {
		l.state = leaseRevoking
		m.stats["revoke_failed"]++
	} else {
		l.state = leaseRevoked
		m.stats["revoke_ok"]++
	}
	m.logStep("revoke %s delete=%s (config %q) -> %s", l, planString(plan), m.target, outcome(err))
}

func (m *model) stepRenew() {
	live := m.leasesIn(leaseLive)
	if len(live) == 0 {
		m.stepIssue()
		return
	}
	l := live[m.rng.IntN(len(live))]
	s := *l.secret
	s.IssueTime = l.issued
	s.Increment = time.Duration(m.rng.IntN(7200)) * time.Second
	plan := m.updatePlan()
	m.up.setPlan(fakeopenai.OpUpdateProjectKey, plan...)
	start := time.Now()
	resp, err := m.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Storage: m.storage, Secret: &s})
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	if err != nil {
		m.stats["renew_failed"]++
		l.keyUncertain = true
	} else {
		m.stats["renew_ok"]++
		l.keyUncertain = false
		if resp != nil && resp.Secret != nil {
			l.end = start.Add(resp.Secret.TTL)
		}
	}
	m.logStep("renew %s increment=%s update=%s (config %q) -> %s", l, s.Increment, planString(plan), m.target, outcome(err))
}

func (m *model) stepRollback() {
	list, del := m.listPlan(), m.deletePlan()
	m.up.setPlan(fakeopenai.OpListServiceAccounts, list...)
	m.up.setPlan(fakeopenai.OpDeleteServiceAccount, del...)
	wal := m.walCount()
	err := m.rollback(true)
	m.stats["rollback"]++
	m.logStep("rollback (immediate, %d WAL entries) list=%s delete=%s (config %q) -> %s", wal, planString(list), planString(del), m.target, outcome(err))
}

// stepTick is Vault's one-minute rollback tick: the periodic function (the
// scheduled sweep runs, tidy_interval being 1s) and WAL entries older than
// the rollback age (none, in a walk this short).
func (m *model) stepTick() {
	list, del := m.listPlan(), m.deletePlan()
	m.up.setPlan(fakeopenai.OpListServiceAccounts, list...)
	m.up.setPlan(fakeopenai.OpDeleteServiceAccount, del...)
	err := m.rollback(false)
	m.stats["tick"]++
	m.logStep("tick (periodic sweep) list=%s delete=%s (config %q) -> %s", planString(list), planString(del), m.target, outcome(err))
}

func (m *model) stepTidy() {
	list, del := m.listPlan(), m.deletePlan()
	m.up.setPlan(fakeopenai.OpListServiceAccounts, list...)
	m.up.setPlan(fakeopenai.OpDeleteServiceAccount, del...)
	dry := m.rng.IntN(4) == 0
	err := m.call(logical.UpdateOperation, "tidy", map[string]interface{}{"dry_run": dry}, "")
	m.stats["tidy"]++
	m.logStep("tidy dry_run=%t list=%s delete=%s (config %q) -> %s", dry, planString(list), planString(del), m.target, outcome(err))
}

func (m *model) stepRotate() {
	create := []modelFault(nil)
	switch m.pick(60, 10, 10, 1, 5) {
	case 1:
		create = []modelFault{mf500}
	case 2:
		create = []modelFault{mfDone502} // a twin admin key
	case 3:
		create = []modelFault{mfLost}
	case 4:
		create = repeatFault(mf500, 6)
	}
	del := []modelFault(nil)
	switch m.pick(80, 10, 10) {
	case 1:
		del = []modelFault{mf500}
	case 2:
		del = repeatFault(mf500, 15) // the old key stays pending
	}
	m.up.setPlan(fakeopenai.OpCreateAdminKey, create...)
	m.up.setPlan(fakeopenai.OpDeleteAdminKey, del...)
	err := m.call(logical.UpdateOperation, "config/rotate-root", nil, "")
	m.stats["rotate"]++
	m.logStep("rotate-root create=%s delete=%s (config %q) -> %s", planString(create), planString(del), m.target, outcome(err))
}

// stepConfig rewrites or deletes config. Invariant (e): without force, a
// write that leaves live keys' projects invisible (organization B), or a
// delete, must be refused while the test holds a key whose account lives.
func (m *model) stepConfig() {
	force := m.rng.IntN(2) == 0
	before := m.target
	exposed := m.heldWithAccount()
	var what string
	var err error
	v := m.pick(35, 20, 30, 15)
	if before != "A" {
		v = m.pick(10, 50, 25, 15)
	}
	if (v == 2 && m.without["org-b"]) || (v == 3 && m.without["config-delete"]) {
		v = 1
	}
	switch {
	case v == 0 && before != "":
		what = "tune"
		err = m.call(logical.UpdateOperation, "config", m.tuneData(), "")
	case v <= 1:
		what = "rewrite to org A (new admin key)"
		err = m.writeConfig(m.orgA, force)
	case v == 2:
		what = "rewrite to org B (projects invisible)"
		err = m.writeConfig(m.orgB, force)
	default:
		force = m.rng.IntN(10) < 3
		what = "delete"
		err = m.call(logical.DeleteOperation, "config", map[string]interface{}{"force": force}, "")
	}
	m.syncTarget()
	m.retireSuppliedKeys()
	m.stats["config_"+strings.Fields(what)[0]+"_"+map[bool]string{true: "ok", false: "refused"}[err == nil]]++
	m.logStep("config %s force=%t (config %q -> %q, %d held accounts live) -> %s", what, force, before, m.target, exposed, outcome(err))

	if !force && exposed > 0 && before == "A" && m.target != "A" {
		m.fail("(e) config %s without force was accepted while %d key(s) issued from organization A are live: their revocations can no longer reach their accounts", what, exposed)
	}
	if !force && exposed > 0 && before == "" && m.target == "B" {
		m.fail("(e) config written to organization B without force while %d key(s) from organization A are live", exposed)
	}
	if what == "tune" && before == "A" && err != nil {
		m.fail("(e) a config write that changes only tuning fields was refused: %v", err)
	}
	if strings.HasPrefix(what, "rewrite to org A") && (before == "A" || force) && err != nil {
		m.fail("config rewrite to organization A (force=%t) was refused: %v", force, err)
	}
	if strings.HasPrefix(what, "rewrite to org B") && force && err != nil {
		m.fail("config rewrite to organization B with force was refused: %v", err)
	}
}

func (m *model) tuneData() map[string]interface{} {
	return map[string]interface{}{
		"max_retries":     m.rng.IntN(4),
		"request_timeout": 30,
		"tidy_interval":   1,
	}
}

// writeConfig points config at org with a fresh admin key of that org (by
// id, so the engine need not match redacted values among many keys).
func (m *model) writeConfig(org *modelOrg, force bool) error {
	value := "sk-admin-model-" + fmt.Sprintf("%016x%016x", m.rng.Uint64(), m.rng.Uint64())
	id := org.fake.AddAdminKey(value)
	org.supplied[id] = value
	data := m.tuneData()
	data["admin_api_key"] = value
	data["admin_api_key_id"] = id
	data["base_url"] = org.url
	if force {
		data["force"] = true
	}
	return m.call(logical.UpdateOperation, "config", data, "")
}

// retireSuppliedKeys deletes, at the fake, the admin keys the test wrote
// that config no longer holds (refused writes included).
func (m *model) retireSuppliedKeys() {
	cfg, err := getConfig(context.Background(), m.storage)
	if err != nil {
		m.fail("read config: %v", err)
	}
	for _, org := range []*modelOrg{m.orgA, m.orgB} {
		for id, value := range org.supplied {
			if cfg != nil && cfg.AdminAPIKeyID == id {
				continue
			}
			req := httptest.NewRequest("DELETE", "/v1/organization/admin_api_keys/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+value)
			rec := httptest.NewRecorder()
			org.fake.ServeHTTP(rec, req)
			if rec.Code != 200 && rec.Code != 404 && rec.Code != 401 {
				m.fail("retire supplied admin key %s: HTTP %d", id, rec.Code)
			}
			delete(org.supplied, id)
		}
	}
}

func (m *model) syncTarget() {
	cfg, err := getConfig(context.Background(), m.storage)
	if err != nil {
		m.fail("read config: %v", err)
	}
	switch {
	case cfg == nil:
		m.target = ""
	case cfg.BaseURL == m.orgA.url:
		m.target = "A"
	case cfg.BaseURL == m.orgB.url:
		m.target = "B"
	default:
		m.fail("config points at an unknown base_url")
	}
}

// heldWithAccount counts held leases whose account still lives at A.
func (m *model) heldWithAccount() int {
	live := m.accountsAtA()
	n := 0
	for _, l := range m.held() {
		if _, ok := live[l.saID]; ok {
			n++
		}
	}
	return n
}

// accountsAtA returns the live accounts in the roles' projects by id.
func (m *model) accountsAtA() map[string]fakeopenai.Account {
	out := map[string]fakeopenai.Account{}
	for _, a := range m.orgA.fake.LiveAccounts() {
		if a.ProjectID == modelProjectA || a.ProjectID == modelProjectB {
			out[a.ID] = a
		}
	}
	return out
}

func (m *model) walCount() int {
	m.b.walDeleter.settle(10 * time.Second)
	keys, err := framework.ListWAL(context.Background(), m.storage)
	if err != nil {
		m.fail("list WAL: %v", err)
	}
	return len(keys)
}

// checkInvariants checks (a) and (b); revoked leases leave the model once
// their account is confirmed gone (ids are never reused).
func (m *model) checkInvariants() {
	live := m.accountsAtA()
	kept := m.leases[:0]
	for _, l := range m.leases {
		_, exists := live[l.saID]
		switch l.state {
		case leaseLive:
			if !exists {
				m.fail("(a) the account of live %s was deleted while its lease lives", l)
			}
			m.checkKeyExpiry(l)
		case leaseRevoked:
			if exists {
				m.fail("(b) %s was reported revoked but its account %s still lives at OpenAI (name %q)", l, l.saID, live[l.saID].Name)
			}
			continue
		}
		kept = append(kept, l)
	}
	m.leases = kept
}

// checkKeyExpiry checks (f) for one live lease. The lease's end is taken
// when its issue or renewal began, so it is at most that request's
// duration early; expiries are whole seconds.
func (m *model) checkKeyExpiry(l *modelLease) {
	r, err := getAccountRecord(context.Background(), m.storage, l.saID)
	if err != nil {
		m.fail("read record of %s: %v", l, err)
	}
	if r == nil {
		m.fail("(f) live %s has no account record", l)
	}
	if !l.follows {
		return
	}
	// A lease at its maximum lifetime ends when Vault says, a moment after
	// the key's hard cap (taken before the create, as an expiry at max_ttl
	// always was): the key dies with it, not later.
	end := min(l.end.Unix(), int64Of(l.secret.InternalData["key_expiry_cap"])) - 1
	if r.KeyExpiresAt < end {
		m.fail("(f) the record of live %s says its key expires %ds before the lease ends: tidy would delete a live lease's account", l, end-r.KeyExpiresAt)
	}
	if l.keyUncertain {
		return
	}
	k, ok := m.orgA.fake.Key(l.keyID)
	if !ok {
		m.fail("(f) the key of live %s is gone at OpenAI", l)
	}
	if k.ExpiresAt < end {
		m.fail("(f) the key of live %s expires at OpenAI %ds before its lease ends", l, end-k.ExpiresAt)
	}
	if !slices.Equal(k.Scopes, l.scopes) {
		m.fail("the key of live %s has scopes %v at OpenAI, %v when issued", l, k.Scopes, l.scopes)
	}
}

// quiesce heals OpenAI, puts config back on A and runs one rollback, then
// checks (c) and (d).
func (m *model) quiesce() {
	m.up.clearPlans()
	if m.target != "A" {
		if err := m.writeConfig(m.orgA, true); err != nil {
			m.fail("quiesce: config rewrite to organization A with force was refused: %v", err)
		}
		m.syncTarget()
	}
	err := m.rollback(true)
	m.logStep("quiesce: config on A, healthy rollback -> %s", outcome(err))
	if err != nil {
		m.fail("(d) WAL rollback failed with OpenAI healthy and config in place: %v", err)
	}
	if n := m.walCount(); n > 0 {
		m.fail("(d) %d WAL entries remain after a healthy rollback", n)
	}
	owned := map[string]*modelLease{}
	for _, l := range m.held() {
		owned[l.saID] = l
	}
	var orphans []string
	for id, a := range m.accountsAtA() {
		if owned[id] == nil {
			orphans = append(orphans, fmt.Sprintf("%s (%s, name %q)", id, a.ProjectID, a.Name))
		}
	}
	if len(orphans) > 0 {
		sort.Strings(orphans)
		m.fail("(c) %d account(s) belong to no lease after a healthy rollback: %s", len(orphans), strings.Join(orphans, ", "))
	}
	m.checkInvariants()
}

// drain revokes everything left with OpenAI healthy: every revoke must
// succeed, and nothing may remain at OpenAI or in the engine's records.
func (m *model) drain() {
	for _, l := range m.held() {
		if err := m.secretOp(logical.RevokeOperation, l.secret); err != nil {
			m.logStep("drain: revoke %s -> %s", l, outcome(err))
			m.fail("final revoke of %s failed with OpenAI healthy: %v", l, err)
		}
		l.state = leaseRevoked
	}
	m.logStep("drain: revoked every held lease")
	m.checkInvariants()
	if err := m.rollback(true); err != nil {
		m.fail("(d) final rollback: %v", err)
	}
	if left := m.accountsAtA(); len(left) > 0 {
		m.fail("(c) %d account(s) remain at OpenAI after every lease was revoked", len(left))
	}
	ids, err := listAccountIDs(context.Background(), m.storage)
	if err != nil {
		m.fail("list records: %v", err)
	}
	// Revoked records stay as the ledger (ledger.go); none may be live.
	var live []string
	for _, id := range ids {
		r, err := getAccountRecord(context.Background(), m.storage, id)
		if err != nil {
			m.fail("read record %s: %v", id, err)
		}
		if r != nil && !r.revoked() {
			live = append(live, id)
		}
	}
	if len(live) > 0 {
		m.fail("%d live account record(s) remain after every lease was revoked: %v", len(live), live)
	}
}

// modelLogRing keeps the engine's last log lines for a failure report.
type modelLogRing struct {
	mu    sync.Mutex
	lines []string
}

func (r *modelLogRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		r.lines = append(r.lines, modelRedact(line))
	}
	if len(r.lines) > 25 {
		r.lines = r.lines[len(r.lines)-25:]
	}
	return len(p), nil
}

func (r *modelLogRing) tail() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// modelKeyPattern matches OpenAI key values (admin and service-account keys).
var modelKeyPattern = regexp.MustCompile(`sk-[A-Za-z0-9_-]{6,}`)

// modelRedact keeps key values out of a failure report whatever the engine
// put in an error or a log line.
func modelRedact(s string) string {
	return modelKeyPattern.ReplaceAllString(s, "sk-[redacted]")
}
