package backend

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/helper/template"
)

// defaultNameTemplate gives names like vault-app-token-alice-1732350000-Ab3dE9xZ:
// the role and requester for humans reading OpenAI's console, and a random
// tail so WAL rollback can find exactly the account an interrupted issue made.
const defaultNameTemplate = `vault-{{ .RoleName | truncate 24 }}-{{ .DisplayName | truncate 24 }}-{{ unix_time }}-{{ random 8 }}`

// maxNameLength bounds service-account names. OpenAI documents no limit; this
// keeps names readable in its console and well inside any plausible one.
const maxNameLength = 96

// nameTail is how much of an over-long name's end survives shortening, so
// the unique suffix a template usually ends with is kept.
const nameTail = 24

// nameTemplateData is what a name_template may reference.
type nameTemplateData struct {
	RoleName      string
	DisplayName   string
	MountAccessor string
}

type nameTemplate struct {
	tmpl template.StringTemplate
}

func parseNameTemplate(raw string) (*nameTemplate, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("must not be empty")
	}
	if err := checkTemplateBounds(raw); err != nil {
		return nil, err
	}
	t, err := template.NewTemplate(template.Template(raw))
	if err != nil {
		return nil, err
	}
	return &nameTemplate{tmpl: t}, nil
}

// render produces a name OpenAI will accept, or an error if nothing usable remains.
func (t *nameTemplate) render(data nameTemplateData) (string, error) {
	data = nameTemplateData{RoleName: boundInput(data.RoleName), DisplayName: boundInput(data.DisplayName), MountAccessor: boundInput(data.MountAccessor)}
	raw, err := t.tmpl.Generate(data)
	if err != nil {
		return "", err
	}
	name := sanitizeName(raw)
	if name == "" {
		return "", errors.New("rendered to an empty name")
	}
	return name, nil
}

// validate renders the template twice with sample data: it must produce a
// non-empty name, and two different names, because rollback deletes by name.
func (t *nameTemplate) validate(roleName string) error {
	sample := nameTemplateData{RoleName: roleName, DisplayName: "token-sample", MountAccessor: "openai_0123abcd"}
	a, err := t.render(sample)
	if err != nil {
		return err
	}
	b, err := t.render(sample)
	if err != nil {
		return err
	}
	if a == b {
		return fmt.Errorf("must produce a unique name per call (include {{ random N }}); it rendered %q twice", a)
	}
	return nil
}

// sanitizeName keeps letters, digits, '-', '_' and '.', maps everything else
// (spaces, unicode, template debris) to '-', collapses runs, trims the ends,
// and shortens from the middle so the unique tail survives.
func sanitizeName(raw string) string {
	var sb strings.Builder
	lastDash := true // suppresses leading dashes
	for _, r := range raw {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.':
			sb.WriteRune(r)
			lastDash = false
		default:
			if !lastDash {
				sb.WriteByte('-')
				lastDash = true
			}
		}
	}
	name := strings.Trim(sb.String(), "-.")
	if len(name) > maxNameLength {
		head := name[:maxNameLength-nameTail-1]
		name = strings.TrimRight(head, "-.") + "-" + strings.TrimLeft(name[len(name)-nameTail:], "-.")
	}
	return name
}
