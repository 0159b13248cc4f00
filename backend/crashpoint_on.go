//go:build crashpoints

package backend

import (
	"fmt"
	"os"
)

// crashpointEnv names the step at which a plugin built with -tags
// crashpoints stops. Only the e2e suite builds it so, to kill -9 Vault at
// every step of an issue and prove that none leaves a key behind.
const crashpointEnv = "OPENAI_PLUGIN_CRASHPOINT"

var crashpointName = os.Getenv(crashpointEnv)

// crashpoint announces the step on stderr, which Vault copies into its log,
// and blocks the request until the test kills the process.
func crashpoint(name string) {
	if name == "" || name != crashpointName {
		return
	}
	fmt.Fprintf(os.Stderr, "crashpoint %s reached\n", name)
	select {}
}
