package fakeopenai

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestContractRejectsDrift proves the validator has teeth: responses and
// requests that drift from the spec are reported.
func TestContractRejectsDrift(t *testing.T) {
	c := mustContract(t)
	fake := New(Options{SkipContract: true})
	// Take a genuine exchange, then corrupt it.
	do := func(method, path, body string) exchange {
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		req := httptest.NewRequest(method, "http://fake"+path, rb)
		req.Header.Set("Authorization", "Bearer "+fake.AdminKey())
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, req)
		req = httptest.NewRequest(method, "http://fake"+path, nil)
		req.Header.Set("Authorization", "Bearer "+fake.AdminKey())
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return exchange{req: req, reqBody: []byte(body), status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}
	create := do("POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", `{"name":"a","expires_in_seconds":60}`)
	if _, reqErrs, respErrs := c.check(create); len(reqErrs)+len(respErrs) != 0 {
		t.Fatalf("genuine exchange rejected: %s %s", scrub(reqErrs), scrub(respErrs))
	}
	edit := func(x exchange, f func(m map[string]any)) exchange {
		var m map[string]any
		if err := json.Unmarshal(x.body, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		x.body, _ = json.Marshal(m)
		return x
	}
	// withBody is the exchange as if the request had carried body.
	withBody := func(x exchange, body string) exchange {
		x.reqBody = []byte(body)
		return x
	}
	notFound := do("GET", "/v1/organization/projects/proj_missing", "")
	list := do("GET", "/v1/organization/projects/"+ProjectActive+"/service_accounts", "")

	cases := map[string]exchange{
		"role missing":        edit(create, func(m map[string]any) { delete(m, "role") }),
		"role not in enum":    edit(create, func(m map[string]any) { m["role"] = "admin" }),
		"created_at a string": edit(create, func(m map[string]any) { m["created_at"] = "yesterday" }),
		"key value missing":   edit(create, func(m map[string]any) { delete(m["api_key"].(map[string]any), "value") }),
		"misspelt field":      edit(create, func(m map[string]any) { m["create_at"] = 1 }),
		"has_more missing":    edit(list, func(m map[string]any) { delete(m, "has_more") }),
		"error code missing":  edit(notFound, func(m map[string]any) { delete(m["error"].(map[string]any), "code") }),
		"error not enveloped": edit(notFound, func(m map[string]any) { m["message"] = "x"; delete(m, "error") }),
		"created answered 201": func() exchange {
			x := create
			x.status = http.StatusCreated
			return x
		}(),
		"request without name": withBody(create, `{"nam":"a"}`),
		// Requests: every field the engine sends must be in the contract.
		"request with a misspelt expiry":                              withBody(create, `{"name":"a","expires_in":60}`),
		"request expiry a string (SDK-only field still type-checked)": withBody(create, `{"name":"a","expires_in_seconds":"60"}`),
		"request expiry above a year":                                 withBody(create, `{"name":"a","expires_in_seconds":31536001}`),
		"request expiry with create_service_account_only":             withBody(create, `{"name":"a","create_service_account_only":true,"expires_in_seconds":60}`),
		"request with an undeclared query parameter": func() exchange {
			x := list
			x.req = httptest.NewRequest("GET", "http://fake"+x.req.URL.Path+"?limit=5&page_size=5", nil)
			x.req.Header.Set("Authorization", "Bearer "+fake.AdminKey())
			return x
		}(),
		"request without a bearer token": func() exchange {
			x := list
			x.req = x.req.Clone(context.Background())
			x.req.Header.Set("Authorization", "bearer "+fake.AdminKey())
			return x
		}(),
		// Answers: SDK-only fields are type-checked, error statuses must be OpenAI's.
		"key expires_at a string": edit(create, func(m map[string]any) { m["api_key"].(map[string]any)["expires_at"] = "soon" }),
		"error answered 418": func() exchange {
			x := notFound
			x.status = http.StatusTeapot
			return x
		}(),
		"error on an unknown path answered 418": func() exchange {
			x := do("GET", "/v1/organization/nowhere", "")
			x.status = http.StatusTeapot
			return x
		}(),
		"admin key expiry too long": withBody(do("POST", "/v1/organization/admin_api_keys", `{"name":"k"}`), `{"name":"k","expires_in_seconds":31536001}`),
	}
	// The key and inference operations, hand-written contract included.
	bare := do("POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", `{"name":"b","create_service_account_only":true}`)
	var bareM map[string]any
	_ = json.Unmarshal(bare.body, &bareM)
	keysPath := "/v1/organization/projects/" + ProjectActive + "/service_accounts/" + bareM["id"].(string) + "/api_keys"
	keyCreate := do("POST", keysPath, `{"scopes":["api.model.read"],"expires_in_seconds":60}`)
	var keyM map[string]any
	_ = json.Unmarshal(keyCreate.body, &keyM)
	keyPath := "/v1/organization/projects/" + ProjectActive + "/api_keys/" + keyM["id"].(string)
	update := do("POST", keyPath, `{"expires_in_seconds":120}`)
	// Inference needs the key's value; the admin key is refused.
	modelsReq := func() exchange {
		req := httptest.NewRequest("GET", "http://fake/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+keyM["value"].(string))
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, req)
		return exchange{req: req, status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}()
	respReq := func() exchange {
		// The scoped key lacks api.responses.write: use an unscoped one.
		full := do("POST", keysPath, `{}`)
		var fm map[string]any
		_ = json.Unmarshal(full.body, &fm)
		body := `{"model":"m","input":"hi"}`
		req := httptest.NewRequest("POST", "http://fake/v1/responses", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fm["value"].(string))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, req)
		req = httptest.NewRequest("POST", "http://fake/v1/responses", nil)
		req.Header.Set("Authorization", "Bearer "+fm["value"].(string))
		req.Header.Set("Content-Type", "application/json")
		return exchange{req: req, reqBody: []byte(body), status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}()
	for name, x := range map[string]exchange{"key create": keyCreate, "key update": update, "models": modelsReq, "responses": respReq} {
		if x.status != 200 {
			t.Fatalf("%s: genuine exchange answered %d: %s", name, x.status, scrub(string(x.body)))
		}
		if _, reqErrs, respErrs := c.check(x); len(reqErrs)+len(respErrs) != 0 {
			t.Fatalf("%s: genuine exchange rejected: %s %s", name, scrub(reqErrs), scrub(respErrs))
		}
	}
	for name, x := range map[string]exchange{
		"key create answer without value":           edit(keyCreate, func(m map[string]any) { delete(m, "value") }),
		"key create answer with scopes":             edit(keyCreate, func(m map[string]any) { m["scopes"] = []string{"x"} }),
		"key create request with a misspelt expiry": withBody(keyCreate, `{"expires_in":60}`),
		"key create request scopes not an array":    withBody(keyCreate, `{"scopes":"api.model.read"}`),
		"key create request with an empty scope":    withBody(keyCreate, `{"scopes":[""]}`),
		"update answer carrying the value":          edit(update, func(m map[string]any) { m["value"] = "sk-svcacct-x" }),
		"update answer without owner":               edit(update, func(m map[string]any) { delete(m, "owner") }),
		"update answer expires_at a string":         edit(update, func(m map[string]any) { m["expires_at"] = "later" }),
		"update request empty":                      withBody(update, `{}`),
		"update request with a name":                withBody(update, `{"name":"x","scopes":[]}`),
		"update request expiry null":                withBody(update, `{"expires_in_seconds":null}`),
		"update request scopes with whitespace":     withBody(update, `{"scopes":["a b"]}`),
		"models item without owned_by": edit(modelsReq, func(m map[string]any) {
			delete(m["data"].([]any)[0].(map[string]any), "owned_by")
		}),
		"responses answer without tools":         edit(respReq, func(m map[string]any) { delete(m, "tools") }),
		"responses answer with an unknown field": edit(respReq, func(m map[string]any) { m["outputs"] = []any{} }),
		"responses answer text content lacks text": edit(respReq, func(m map[string]any) {
			delete(m["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any), "text")
		}),
		"responses request without input": withBody(respReq, `{"model":"m"}`),
	} {
		cases[name] = x
	}

	for name, x := range cases {
		t.Run(name, func(t *testing.T) {
			if _, reqErrs, respErrs := c.check(x); len(reqErrs)+len(respErrs) == 0 {
				t.Errorf("drifted exchange accepted: %s", scrub(string(x.body)))
			}
		})
	}
}

// TestContractCoversEveryRoute keeps the fake from growing an endpoint the
// contract does not describe.
func TestContractCoversEveryRoute(t *testing.T) {
	c := mustContract(t)
	for _, rt := range routes {
		path := "/v1/" + strings.ReplaceAll(strings.Join(rt.pattern, "/"), "*", "x_1")
		for method, op := range rt.methods {
			req := httptest.NewRequest(method, "https://api.openai.com"+path, nil)
			route, _, err := c.router.FindRoute(req)
			if err != nil {
				t.Errorf("%s %s (%s) is not in the embedded spec: %v", method, path, op, err)
				continue
			}
			if route.Operation.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
		}
	}
}

// TestFakeAnswersViolationsLoudly proves a violation reaches the test driving
// a client even if nobody reads the record: the fake answers an error in
// place of what it would have served.
func TestFakeAnswersViolationsLoudly(t *testing.T) {
	s := New(Options{})
	key := s.AdminKey()
	saPath := "/v1/organization/projects/" + ProjectActive + "/service_accounts"

	// The fake would serve this list (it ignores unknown query parameters),
	// but the contract does not declare page_size: 400 instead, recorded.
	code, _, m := rawCall(t, s, "GET", saPath+"?page_size=5", key, "")
	if e := errorOf(t, m); code != http.StatusBadRequest || e["code"] != violationCode {
		t.Fatalf("undeclared query parameter: %d %v, want 400 %s", code, m, violationCode)
	}
	if v := s.TakeViolations(); len(v) != 1 || !strings.Contains(v[0], "page_size") {
		t.Fatalf("violations = %q, want one naming page_size", v)
	}

	// An answer of the fake that breaks the contract is replaced by a 500.
	req := httptest.NewRequest("GET", "http://fake/v1/organization/projects/"+ProjectActive, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	bad := exchange{req: req, status: http.StatusTeapot, header: http.Header{"Content-Type": {"application/json"}},
		body: []byte(`{"error":{"message":"m","type":"t","param":null,"code":null}}`)}
	if !s.validate(rec, bad) || rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), violationCode) {
		t.Fatalf("a 418 answer was not replaced: %d %s", rec.Code, rec.Body.String())
	}
	if v := s.TakeViolations(); len(v) != 1 || !strings.Contains(v[0], "418") {
		t.Fatalf("violations = %q, want one naming the 418", v)
	}

	// FailOnViolations turns a left-over violation into a test failure.
	rawCall(t, s, "GET", saPath+"?page_size=5", key, "")
	ft := &fakeTB{}
	s.FailOnViolations(ft)
	ft.cleanup()
	if len(ft.errs) != 1 {
		t.Fatalf("FailOnViolations reported %d errors, want 1", len(ft.errs))
	}

	// With the contract off (benchmarks), nothing is checked or recorded.
	off := New(Options{SkipContract: true})
	if code, _, _ := rawCall(t, off, "GET", saPath+"?page_size=5", off.AdminKey(), ""); code != http.StatusOK {
		t.Fatalf("SkipContract: %d, want 200", code)
	}
	if v := off.Violations(); len(v) != 0 {
		t.Fatalf("SkipContract recorded %q", v)
	}
}
