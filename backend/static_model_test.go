package backend

import (
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// A randomized run of static-role steps (manual rotations, ticks with the
// clock moved past the overlap or the period, refused and lost creates,
// refused deletes, failed stores, rollbacks) checking after every step
// that the stored current key works and the account holds every stored
// key, and, whenever no create response was lost since the last rollback,
// no key but the stored ones (so never more than two). At the end, with
// faults cleared and rollback run, the account holds exactly the role's keys.
func TestStatic_ModelRandomSteps(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/m", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": "10m",
	})
	on := false
	failing := failingStaticPut{e.storage, &on}
	rng := rand.New(rand.NewPCG(17, 17))
	orphansPossible := false
	for step := range 80 {
		e.fake.SetFaults(fakeopenai.Faults{})
		on = false
		switch rng.IntN(8) {
		case 0, 1:
			_, _ = e.do(logical.UpdateOperation, "static-roles/m/rotate", nil)
		case 2:
			r := e.staticRole("m")
			if r.Previous != nil {
				r.Previous.EndsAt = time.Now().Add(-time.Second)
			}
			r.LastRotated = r.LastRotated.Add(-time.Duration(rng.IntN(3)) * time.Hour)
			e.putStatic("m", r)
			e.tick()
		case 3:
			e.setFault(fakeopenai.OpCreateServiceAccountKey, fakeopenai.Fault400, 0, 1, 0)
			_, _ = e.do(logical.UpdateOperation, "static-roles/m/rotate", nil)
		case 4:
			e.setFault(fakeopenai.OpCreateServiceAccountKey, fakeopenai.FaultLostResponse, 1+rng.IntN(3), 0, 0)
			_, _ = e.do(logical.UpdateOperation, "static-roles/m/rotate", nil)
			orphansPossible = true
		case 5:
			e.setFault(fakeopenai.OpDeleteProjectKey, fakeopenai.Fault403, 0, 1, 0)
			if rng.IntN(2) == 0 {
				_, _ = e.do(logical.UpdateOperation, "static-roles/m/rotate", nil)
			} else {
				r := e.staticRole("m")
				if r.Previous != nil {
					r.Previous.EndsAt = time.Now().Add(-time.Second)
					e.putStatic("m", r)
				}
				e.tick()
			}
		case 6:
			on = true
			if rng.IntN(2) == 0 {
				e.setFault(fakeopenai.OpDeleteProjectKey, fakeopenai.Fault403, 0, 1, 0)
				orphansPossible = true
			}
			_ = e.rotateWithStorage("m", failing)
		case 7:
			e.fake.SetFaults(fakeopenai.Faults{})
			e.rollbackNow()
			orphansPossible = false
		}
		e.fake.SetFaults(fakeopenai.Faults{})
		r := e.staticRole("m")
		ids := e.fake.AccountKeyIDs(r.ProjectID, r.ServiceAccountID)
		have := map[string]bool{}
		for _, id := range ids {
			have[id] = true
		}
		if !have[r.Current.ID] {
			t.Fatalf("step %d: current key %s is gone at OpenAI", step, r.Current.ID)
		}
		if e.keyStatus(r.Current.Value) != http.StatusOK {
			t.Fatalf("step %d: current key refused", step)
		}
		if !orphansPossible {
			e.assertStaticInvariants("m")
		}
	}
	e.rollbackNow()
	e.assertStaticInvariants("m")
	if e.walCount() != 0 {
		t.Fatal("WAL entries left after rollback")
	}
}
