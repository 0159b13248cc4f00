package backend

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-secure-stdlib/base62"
	"github.com/hashicorp/vault/sdk/helper/template"
)

// defaultNameTemplate gives names like vault-app-token-alice-1732350000, to
// which the engine appends its own unique token (see uniqueName): the role
// and requester for humans reading OpenAI's console.
const defaultNameTemplate = `vault-{{ .RoleName | truncate 24 }}-{{ .DisplayName | truncate 24 }}-{{ unix_time }}`

// maxNameLength bounds service-account names. OpenAI documents no limit; this
// keeps names readable in its console and well inside any plausible one.
const maxNameLength = 96

// nameTail is how much of an over-long name's end survives shortening.
const nameTail = 24

// uniqueTokenLength is the length of the base62 token the engine appends to
// every service-account name: 12 characters are 71 bits, so two creates
// never share one. WAL rollback deletes only accounts carrying its entry's
// token, which is what makes it safe whatever a name_template renders.
const uniqueTokenLength = 12

// maxTemplatePart is what is left of maxNameLength for the template's output
// once "-" and the token are appended.
const maxTemplatePart = maxNameLength - 1 - uniqueTokenLength

// nameTemplateData is what a name_template may reference.
type nameTemplateData struct {
	RoleName      string
	DisplayName   string
	MountAccessor string
}

// nameTemplateVariables lists nameTemplateData's fields for error messages.
const nameTemplateVariables = ".RoleName, .DisplayName, .MountAccessor"

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

// render produces the template's part of a name: sanitised, and short enough
// that uniqueName can append the engine's token. It fails if nothing usable
// remains.
func (t *nameTemplate) render(data nameTemplateData) (string, error) {
	data = nameTemplateData{RoleName: boundInput(data.RoleName), DisplayName: boundInput(data.DisplayName), MountAccessor: boundInput(data.MountAccessor)}
	raw, err := t.tmpl.Generate(data)
	if err != nil {
		return "", err
	}
	name := shortenName(sanitizeName(raw), maxTemplatePart)
	if name == "" {
		return "", errors.New("rendered to an empty name")
	}
	return name, nil
}

// validate renders the template with sample data: it must produce a non-empty
// name. Uniqueness is not the template's job: the engine appends a token.
func (t *nameTemplate) validate(roleName string) error {
	_, err := t.render(nameTemplateData{RoleName: roleName, DisplayName: "token-sample", MountAccessor: "openai_0123abcd"})
	return err
}

// uniqueName appends a fresh token to a rendered template part. The token is
// appended after sanitising and shortening, so nothing a template renders
// can remove it.
func uniqueName(base string) (name, token string, err error) {
	token, err = base62.Random(uniqueTokenLength)
	if err != nil {
		return "", "", fmt.Errorf("generate a unique service account name: %w", err)
	}
	return shortenName(base, maxTemplatePart) + "-" + token, token, nil
}

// nameHasToken reports whether a service-account name carries token, as
// uniqueName put it there.
func nameHasToken(name, token string) bool {
	return len(token) == uniqueTokenLength && strings.HasSuffix(name, "-"+token)
}

// sanitizeName keeps letters, digits, '-', '_' and '.', maps everything else
// (spaces, unicode, template debris) to '-', collapses runs, trims the ends,
// and shortens to maxNameLength from the middle (see shortenName).
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
	return shortenName(strings.Trim(sb.String(), "-."), maxNameLength)
}

// shortenName cuts an already sanitised name to limit bytes, keeping its
// start and its last nameTail bytes, so both the human-readable prefix and a
// template's own suffix survive.
func shortenName(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	head := strings.TrimRight(name[:limit-nameTail-1], "-.")
	tail := strings.Trim(name[len(name)-nameTail:], "-.")
	if head == "" {
		return tail
	}
	if tail == "" {
		return head
	}
	return head + "-" + tail
}
