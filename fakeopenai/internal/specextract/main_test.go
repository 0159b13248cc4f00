package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const miniSpec = `openapi: 3.1.0
info:
  title: T
  version: "1"
servers:
  - url: https://api.example.com/v1
security:
  - ApiKeyAuth: []
tags:
  - name: Dropped
paths:
  /organization/admin_api_keys:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                $ref: "#/components/schemas/List"
  /unrelated:
    get:
      responses:
        "200":
          $ref: "#/components/responses/Unrelated"
%s
components:
  schemas:
    List:
      type: object
      properties:
        data:
          type: array
          items:
            $ref: "#/components/schemas/Item"
    Item:
      type: object
      properties:
        owner:
          $ref: "#/components/schemas/Owner"
    Owner:
      type: string
    Unused:
      type: string
    ErrorResponse:
      type: object
  responses:
    Unrelated:
      description: x
  securitySchemes:
    ApiKeyAuth:
      type: http
      scheme: bearer
    AdminApiKeyAuth:
      type: http
      scheme: bearer
x-oaiMeta:
  a: b
`

func writeSpec(t *testing.T, extraPaths []string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range extraPaths {
		b.WriteString("  " + p + ":\n    get:\n      responses:\n        \"200\":\n          description: ok\n")
	}
	in := filepath.Join(t.TempDir(), "in.yaml")
	if err := os.WriteFile(in, []byte(strings.Replace(miniSpec, "%s\n", b.String(), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestExtractFollowsReferences(t *testing.T) {
	in := writeSpec(t, paths[1:])
	out := filepath.Join(t.TempDir(), "out.yaml")
	if err := run(in, out, "test"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"openapi: 3.1.0", "servers:", "  /organization/admin_api_keys:", "    List:", "    Item:", "    Owner:", "    ErrorResponse:", "    AdminApiKeyAuth:", "(test)"} {
		if !strings.Contains(got, want+"\n") && !strings.Contains(got, want) {
			t.Errorf("extract lacks %q", want)
		}
	}
	for _, unwanted := range []string{"/unrelated", "Unused", "Unrelated", "tags:", "Dropped", "x-oaiMeta"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("extract carries %q", unwanted)
		}
	}
}

func TestExtractFailsOnMissingPath(t *testing.T) {
	in := writeSpec(t, nil) // only the first path exists
	if err := run(in, filepath.Join(t.TempDir(), "out.yaml"), "test"); err == nil || !strings.Contains(err.Error(), paths[1]) {
		t.Fatalf("err = %v", err)
	}
}
