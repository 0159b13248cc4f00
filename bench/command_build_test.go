package bench

// The benchmark's own programs (cmd/loadgen, cmd/floorplugin), each built once
// per test into a temporary directory removed when that test ends.

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

var benchCommands struct {
	mu    sync.Mutex
	paths map[string]string // command name: built binary
}

// benchCommand builds ./cmd/<name> of the bench module once per test and
// returns the binary's path.
func benchCommand(t *testing.T, name string) string {
	t.Helper()
	benchCommands.mu.Lock()
	defer benchCommands.mu.Unlock()
	if p := benchCommands.paths[name]; p != "" {
		return p
	}
	dir, err := os.MkdirTemp("", "bench-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", path, "./cmd/"+name)
	cmd.Dir = filepath.Join(harness.Suite.RepoRoot, "bench")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	if benchCommands.paths == nil {
		benchCommands.paths = map[string]string{}
	}
	benchCommands.paths[name] = path
	t.Cleanup(func() {
		benchCommands.mu.Lock()
		defer benchCommands.mu.Unlock()
		delete(benchCommands.paths, name)
		os.RemoveAll(dir)
	})
	return path
}
