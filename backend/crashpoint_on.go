//go:build crashpoints

package backend

import (
	"os"

	"github.com/hashicorp/go-hclog"
)

// crashpointEnv names the step at which a plugin built with -tags
// crashpoints stops. Only the e2e suite builds it so, to kill -9 Vault at
// every step of an issue and prove that none leaves a key behind.
const crashpointEnv = "OPENAI_PLUGIN_CRASHPOINT"

var crashpointName = os.Getenv(crashpointEnv)

// crashpoint announces the step in Vault's log and blocks until the test
// kills the process.
func crashpoint(log hclog.Logger, name string) {
	if name == "" || name != crashpointName {
		return
	}
	log.Warn("crashpoint " + name + " reached")
	select {}
}
