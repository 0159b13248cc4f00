package backend

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/vault/sdk/logical"
)

// The README's Troubleshooting table is keyed on error text users see. Each
// row names, in its "from" column, where that text comes from: a file of this
// repository, which must still contain it, or a library whose error value must
// still read that way. A reworded message then fails here instead of leaving a
// user searching the README for words that no longer appear.
func TestTroubleshootingStringsExist(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "\n## Troubleshooting\n")
	if start < 0 {
		t.Fatal("README.md has no Troubleshooting section")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}

	// Errors that come from Vault or its libraries rather than this engine.
	libraries := map[string][]string{
		"go-plugin": {goplugin.ErrChecksumsDoNotMatch.Error()},
		"vault sdk": {logical.ErrPermissionDenied.Error()},
	}
	code := regexp.MustCompile("`([^`]+)`")
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cells) < 4 {
			continue
		}
		rows++
		seen := code.FindStringSubmatch(cells[0])
		from := code.FindStringSubmatch(cells[1])
		if seen == nil || from == nil {
			t.Errorf("row without a `string` and a `source`: %s", line)
			continue
		}
		phrase, source := seen[1], from[1]
		if strings.HasSuffix(source, ".go") {
			src, err := os.ReadFile(filepath.Join("..", source))
			if err != nil {
				t.Errorf("%q: the table names %s: %v", phrase, source, err)
				continue
			}
			if !strings.Contains(string(src), phrase) {
				t.Errorf("%q no longer appears in %s, where the README's Troubleshooting table says it comes from", phrase, source)
			}
			continue
		}
		msgs, ok := libraries[source]
		if !ok {
			t.Errorf("%q: unknown source %q (a repository .go file, or one of the known libraries)", phrase, source)
			continue
		}
		found := false
		for _, m := range msgs {
			found = found || strings.Contains(m, phrase)
		}
		if !found {
			t.Errorf("%q is not what %s says (%q)", phrase, source, msgs)
		}
	}
	// The issue that asked for the table listed these; each must keep a row.
	for _, want := range []string{"checksums did not match", "not found", "active project", "rejected", "OpenAI unreachable", "rate limited", "permission denied",
		"not configured", "unknown role", "OpenAI refused a key with scopes", "can no longer be renewed", "could not move the OpenAI-side expiry"} {
		if !strings.Contains(section, want) {
			t.Errorf("the Troubleshooting table has no row for %q", want)
		}
	}
	if rows < 7 {
		t.Errorf("the Troubleshooting table has %d rows, want at least 7", rows)
	}
}
