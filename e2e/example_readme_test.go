//go:build e2e

package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The top-level README's "Use it from an app" section repeats commands of
// examples/ under the same `<!-- example-test:NAME -->` markers; each such
// block must be identical to the examples' block of that name, which the
// TestExample* tests run. (Until the README has the section this checks
// nothing; once it has the heading, it must have the markers.)
func TestReadmeAppSectionMatchesExamples(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(suite.repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`<!-- example-test:([a-z0-9-]+) -->`).FindAllStringSubmatch(string(raw), -1)
	if strings.Contains(string(raw), "## Use it from an app") && len(names) == 0 {
		t.Fatalf("README.md has a \"Use it from an app\" section without example-test markers: its commands are not the tested ones")
	}
	// Which examples README holds each marker.
	owner := map[string][]string{}
	err = filepath.WalkDir(filepath.Join(suite.repoRoot, "examples"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "README.md" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(suite.repoRoot, p)
		for _, m := range regexp.MustCompile(`<!-- example-test:([a-z0-9-]+) -->`).FindAllStringSubmatch(string(b), -1) {
			owner[m[1]] = append(owner[m[1]], rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range names {
		name := m[1]
		files := owner[name]
		if len(files) != 1 {
			t.Errorf("README.md's example-test:%s is in %d examples READMEs (%v), want exactly 1", name, len(files), files)
			continue
		}
		if got, want := exampleBlock(t, "README.md", name), exampleBlock(t, files[0], name); got != want {
			t.Errorf("README.md's block %s differs from %s's, which the tests run:\n---- README.md ----\n%s---- %s ----\n%s", name, files[0], got, files[0], want)
		}
	}
	t.Logf("%d README blocks checked against examples/", len(names))
}
