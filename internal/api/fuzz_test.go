package api

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// FuzzJSONHandlers sends arbitrary bodies to every JSON POST route, as a
// logged-in admin: nothing may panic or answer 5xx.
func FuzzJSONHandlers(f *testing.F) {
	e := newEnv(f)
	e.listBTCJPY()
	tok := e.loginOperator("aiko")
	paths := []string{"/v1/customers", "/v1/customers/login", "/v1/operators/login/begin", "/v1/operators/login/finish", "/v1/operators/enrol/begin", "/v1/operators/enrol/finish", "/v1/operators/enrol/key", "/v1/commands", "/v1/me/credentials", "/v1/customers/1/kyc",
		"/v1/requests", "/v1/requests/x/approve", "/v1/requests/x/reject", "/v1/assets", "/v1/assets/BTC/review", "/v1/session/logout",
		"/v1/halts", "/v1/watch/commands", "/v1/signer/commands", "/v1/me/orders", "/v1/me/orders/1/cancel", "/v1/me/orders/1/replace",
		"/v1/me/dealer/quotes", "/v1/me/dealer/quotes/1/execute", "/v1/markets/BTC-JPY/cancel-all", "/v1/markets/BTC-JPY/reference"}
	for i := range paths {
		f.Add(uint8(i), []byte(`{"email":"a@b.jp","name":"n","password":"0123456789"}`))
		f.Add(uint8(i), []byte(`{"kind":"set_roles","payload":{"operator":"ren","roles":["x"]},"reason":"r","required_role":"admin"}`))
		f.Add(uint8(i), []byte(`{"id":7,"code":"ZZ","decimals":99,"class":"chain","reason":"r"}`))
		f.Add(uint8(i), []byte(`[{"kyc":"verified"}]`))
		f.Add(uint8(i), []byte(`{"switch":"BTC:withdraw","reason":"drill"}`))
		f.Add(uint8(i), []byte(`{"kind":"resumption_plan","payload":{"id":"p","steps":[{"asset":0,"service":"bank"}]},"reason":"r","required_role":"approver"}`))
		f.Add(uint8(i), []byte(`{"kind":"halt","payload":{"Switch":{"asset":2,"service":"withdraw"},"Actor":"watcher","Reason":"x"}}`))
		f.Add(uint8(i), []byte(`{"market":"BTC/JPY","side":"buy","type":"limit","price":"10000000","qty":"100000","client_order_id":"c1"}`))
		f.Add(uint8(i), []byte(`{"price":-9223372036854775808,"qty":9223372036854775807}`))
		f.Add(uint8(i), []byte(`{"reason":"drill"}`))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		switch path {
		case "/v1/watch/commands":
			req.Header.Set("Authorization", "Bearer "+e.srv.WatcherToken())
		case "/v1/signer/commands":
			req.Header.Set("Authorization", "Bearer "+e.srv.SignerToken())
		default:
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q = %d %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("POST %s = %d with %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
	})
}
