//go:build !crashpoints

package backend

import "github.com/hashicorp/go-hclog"

// crashpoint marks a step of a multi-step operation where the e2e suite kills
// Vault (crashpoint_on.go); in a normal build it does nothing.
func crashpoint(hclog.Logger, string) {}
