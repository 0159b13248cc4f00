package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
)

// A static role: one long-lived service account whose key the engine
// rotates on a schedule. The role and its current and previous keys are one
// storage entry, so a rotation's hand-over (new key in, old key to
// previous) is a single atomic put; the entry is seal-wrapped because it
// holds a key value (backend.go).

const staticRoleStoragePrefix = "static-roles/"

const (
	// defaultStaticOverlap: apps that re-read creds on their own clock
	// (Agent, VSO, cron jobs) get an hour to pick up a new key.
	defaultStaticOverlap = time.Hour
	// minStaticPeriod: Vault's periodic tick is one minute, so a shorter
	// period could not be honoured on Community Edition.
	minStaticPeriod = time.Minute
	// staticKeyGrace is added to every key's OpenAI-side expiry beyond the
	// next rotation plus overlap: a rotation delayed by an outage (OpenAI's
	// or Vault's) for up to a day leaves the working key alive. A key the
	// engine loses track of still dies at OpenAI within period+overlap+grace.
	staticKeyGrace = 24 * time.Hour
	// staticScheduleSamples: irregular cron schedules are judged by the
	// gaps between this many consecutive runs.
	staticScheduleSamples = 12
)

type staticRole struct {
	ProjectID        string `json:"project_id"`
	ServiceAccountID string `json:"service_account_id"`
	// AccountCreatedByEngine: the engine made the account (bare) and deletes
	// it with the role; otherwise the account is the operator's, and only
	// the keys the engine made on it are ever deleted.
	AccountCreatedByEngine bool   `json:"account_created_by_engine,omitempty"`
	ServiceAccountName     string `json:"service_account_name,omitempty"`
	// NameTemplate named the engine's account at create (empty for an
	// operator's account, and for roles from before the field).
	NameTemplate string `json:"name_template,omitempty"`

	Rotation               automatedrotationutil.AutomatedRotationParams `json:"rotation"`
	RotationManagedByVault bool                                          `json:"rotation_managed_by_vault,omitempty"`
	Overlap                time.Duration                                 `json:"overlap"`
	Scopes                 []string                                      `json:"scopes,omitempty"`

	Current  *staticKey `json:"current,omitempty"`
	Previous *staticKey `json:"previous,omitempty"`
	// LastRotated is when Current was stored (last_vault_rotation).
	LastRotated time.Time `json:"last_rotated"`
	// CreatedAt anchors the schedule before the first key exists.
	CreatedAt time.Time `json:"created_at"`
}

// staticKey is one key the engine made on the role's account.
type staticKey struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"`
	// EndsAt (previous key only) is when the overlap ends and the engine
	// deletes it.
	EndsAt time.Time `json:"ends_at,omitempty"`
}

func getStaticRole(ctx context.Context, s logical.Storage, name string) (*staticRole, error) {
	e, err := s.Get(ctx, staticRoleStoragePrefix+name)
	if err != nil || e == nil {
		return nil, err
	}
	var r staticRole
	if err := e.DecodeJSON(&r); err != nil {
		return nil, fmt.Errorf("decode static role %q: %w", name, err)
	}
	return &r, nil
}

func putStaticRole(ctx context.Context, s logical.Storage, name string, r *staticRole) error {
	e, err := logical.StorageEntryJSON(staticRoleStoragePrefix+name, r)
	if err != nil {
		return err
	}
	return s.Put(ctx, e)
}

// nextRotationAfter is when the role's schedule next fires after t.
func (r *staticRole) nextRotationAfter(t time.Time) time.Time {
	if r.Rotation.RotationPeriod > 0 {
		return t.Add(r.Rotation.RotationPeriod)
	}
	if sched, err := rotation.DefaultScheduler.Parse(r.Rotation.RotationSchedule); err == nil {
		return sched.Next(t)
	}
	return time.Time{}
}

// nextRotation is when the current key is due to be replaced; a role
// without a key is due now.
func (r *staticRole) nextRotation() time.Time {
	if r.Current == nil {
		return r.CreatedAt
	}
	return r.nextRotationAfter(r.LastRotated)
}

// keyLifetime is the expiry a key created at now gets at OpenAI: until the
// rotation after it, plus the overlap it serves as previous key, plus grace.
func (r *staticRole) keyLifetime(now time.Time) time.Duration {
	life := r.nextRotationAfter(now).Sub(now) + r.Overlap + staticKeyGrace
	return min(max(life, time.Second), maxKeyLifetime)
}

// intervalBounds are the shortest and longest gaps between rotations: the
// period, or the extremes over the schedule's next runs.
func (r *staticRole) intervalBounds(now time.Time) (shortest, longest time.Duration) {
	if r.Rotation.RotationPeriod > 0 {
		return r.Rotation.RotationPeriod, r.Rotation.RotationPeriod
	}
	t := r.nextRotationAfter(now)
	for range staticScheduleSamples {
		next := r.nextRotationAfter(t)
		if next.IsZero() {
			break
		}
		gap := next.Sub(t)
		if shortest == 0 || gap < shortest {
			shortest = gap
		}
		longest = max(longest, gap)
		t = next
	}
	return shortest, longest
}

// validateStaticTiming refuses a schedule OpenAI could not honour or that
// would let a previous key outlive the next rotation (three live keys).
func (r *staticRole) validateStaticTiming(now time.Time) *logical.Response {
	hasPeriod, hasSchedule := r.Rotation.RotationPeriod != 0, r.Rotation.RotationSchedule != ""
	switch {
	case hasPeriod && hasSchedule:
		return logical.ErrorResponse("rotation_period: give rotation_period or rotation_schedule, not both")
	case !hasPeriod && !hasSchedule:
		return logical.ErrorResponse("rotation_period: a static role needs rotation_period or rotation_schedule")
	case r.Rotation.DisableAutomatedRotation:
		return logical.ErrorResponse("disable_automated_rotation: static roles always rotate (their keys expire at OpenAI); use a longer rotation_period instead")
	case r.Overlap < 0:
		return logical.ErrorResponse("overlap: must not be negative")
	}
	maxInterval := maxKeyLifetime - r.Overlap - staticKeyGrace
	field := "rotation_period"
	if hasSchedule {
		field = "rotation_schedule"
	}
	shortest, longest := r.intervalBounds(now)
	switch {
	case shortest < minStaticPeriod:
		return logical.ErrorResponse("%s: rotations must be at least %s apart (got %s)", field, minStaticPeriod, shortest)
	case longest > maxInterval:
		return logical.ErrorResponse("%s: rotations at most %s apart (OpenAI's one-year key expiry minus overlap %s and the engine's grace %s; got %s)",
			field, maxInterval, r.Overlap, staticKeyGrace, longest)
	case r.Overlap >= shortest:
		return logical.ErrorResponse("overlap: must be shorter than the time between rotations (%s), or three keys would be live; got %s (the default is %s)",
			shortest, r.Overlap, defaultStaticOverlap)
	}
	return nil
}

// staticLiveKeyCounts maps every static role to the number of its keys the
// engine holds (current and previous): the openai_static_live_keys gauge.
func staticLiveKeyCounts(ctx context.Context, s logical.Storage) (map[string]int, error) {
	names, err := s.List(ctx, staticRoleStoragePrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(names))
	for _, name := range names {
		r, err := getStaticRole(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if r == nil {
			continue
		}
		n := 0
		for _, k := range []*staticKey{r.Current, r.Previous} {
			if k != nil {
				n++
			}
		}
		out[name] = n
	}
	return out, nil
}
