package backend

import (
	"strings"
	"testing"
	"time"
)

// FuzzNameTemplate: any template a role write accepts renders quickly, or
// fails cleanly, to a name OpenAI accepts.
func FuzzNameTemplate(f *testing.F) {
	for _, s := range []string{
		defaultNameTemplate,
		`{{ .RoleName }}-{{ random 8 }}`,
		`{{ if eq .RoleName "a" }}x{{ else }}y{{ end }}{{ uuid }}`,
		`{{ .DisplayName | lowercase | replace "-" "_" | truncate 20 }}{{ unix_time_millis }}`,
		`{{ random 20 | sha256 | truncate_sha256 12 }}{{ base64 .MountAccessor }}`,
		`{{ timestamp "2006-01-02T15:04:05" }}-{{ random 4 }}`,
		`{{ range 5 }}x{{ end }}`,
		`{{ printf "%d" 1 }}`,
		`{{ with $x := .RoleName }}{{ $x }}{{ end }}{{ random 3 }}`,
		`ünïcødé ✓ {{ .RoleName }} {{ random 8 }}`,
		`{{`, `}}`, `{{ .Nope }}`, `{{ random -1 }}`, `{{ truncate 0 .RoleName }}`,
	} {
		f.Add(s, "app", "token-alice", "openai_abc")
	}
	f.Add(defaultNameTemplate, "r", "{{ .MountAccessor }}", "m")
	f.Add(`{{ .DisplayName }}`, "r", strings.Repeat("é", 300), "m")
	f.Fuzz(func(t *testing.T, tmpl, role, display, accessor string) {
		nt, err := parseNameTemplate(tmpl)
		if err != nil {
			return
		}
		start := time.Now()
		name, err := nt.render(nameTemplateData{RoleName: role, DisplayName: display, MountAccessor: accessor})
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("rendering %q took %s", tmpl, took)
		}
		if err != nil {
			if name != "" {
				t.Fatalf("error %v with name %q", err, name)
			}
			return
		}
		assertAcceptableName(t, name)
		if len(name) > maxTemplatePart {
			t.Fatalf("template part %q leaves no room for the token", name)
		}
		full, token, err := uniqueName(name)
		if err != nil {
			t.Fatal(err)
		}
		assertAcceptableName(t, full)
		if !nameHasToken(full, token) {
			t.Fatalf("name %q lost its token %q", full, token)
		}
	})
}

// FuzzSanitizeName: whatever comes in, what goes out is a name OpenAI
// accepts, or empty; and sanitising twice changes nothing.
func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"vault-app-1", "  a  b ", "---", "..x..", "ü", strings.Repeat("ab-", 80) + "TAIL", "\x00\xff", "a\u202eb", "{{x}}/../"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name := sanitizeName(raw)
		if name == "" {
			return
		}
		assertAcceptableName(t, name)
		if again := sanitizeName(name); again != name {
			t.Fatalf("not idempotent: %q -> %q -> %q", raw, name, again)
		}
	})
}

func assertAcceptableName(t *testing.T, name string) {
	t.Helper()
	switch {
	case name == "" || len(name) > maxNameLength:
		t.Fatalf("name length %d: %q", len(name), name)
	case !safeName.MatchString(name):
		t.Fatalf("name has characters OpenAI may reject: %q", name)
	case strings.Contains(name, "--"), strings.HasSuffix(name, "-"), strings.HasSuffix(name, "."), strings.HasPrefix(name, "."):
		t.Fatalf("name has untidy separators: %q", name)
	}
}
