package fakeopenai

import (
	"testing"
)

func TestProjects(t *testing.T) {
	s := New(Options{})
	key := s.AdminKey()
	_, _, m := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectArchived, key, "")
	if m["status"] != "archived" || m["archived_at"] == nil || m["object"] != "organization.project" {
		t.Fatalf("archived project: %v", m)
	}

	// Archiving a project removes its service accounts, as OpenAI does.
	s.AddProject("proj_x", "X", "active")
	if code, _, _ := rawCall(t, s, "POST", "/v1/organization/projects/proj_x/service_accounts", key, `{"name":"a"}`); code != 200 {
		t.Fatal(code)
	}
	s.AddProject("proj_x", "X", "archived")
	if got := len(s.LiveAccounts()); got != 0 {
		t.Fatalf("archived project kept %d accounts", got)
	}
}
