package harness

import (
	"bytes"
	"os/exec"
	"testing"
)

// BuildPlugin builds the plugin from the suite's repository at version (as
// Main builds the suite's, with b's race and tags) to path, for tests that
// need more than one version in a plugin directory (upgrades). It returns the
// binary's SHA-256. With b the same as Main's, only the link is new work.
func BuildPlugin(t testing.TB, path, version string, b Build) string {
	t.Helper()
	return BuildPluginFrom(t, Suite.RepoRoot, path, version, b)
}

// BuildPluginFrom is BuildPlugin from the source tree at src (another checkout,
// say a git worktree of an older commit), so two builds compared against each
// other differ only in their source.
func BuildPluginFrom(t testing.TB, src, path, version string, b Build) string {
	t.Helper()
	args := []string{"build", "-trimpath"}
	if b.Race {
		args = append(args, "-race")
	}
	if b.Tags != "" {
		args = append(args, "-tags", b.Tags)
	}
	args = append(args,
		"-ldflags", "-X github.com/vault-plugin-openai/vault-plugin-openai/backend.Version="+version,
		"-o", path, "./cmd/vault-plugin-openai")
	cmd := exec.Command("go", args...)
	cmd.Dir = src
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("building the plugin at %s from %s: %v\n%s", version, src, err, out.String())
	}
	sum, err := FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
