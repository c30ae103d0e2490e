package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/journal"
	"kinko/internal/operators"
	"kinko/internal/passkey"
	"kinko/internal/people"
)

// TestSignedRoutes: a request without an assertion is answered with the
// digest to sign; one signed by another operator's key, over other bytes,
// or replayed is refused; the right one is journaled with its assertion.
func TestSignedRoutes(t *testing.T) {
	e := newEnv(t)
	aiko, ren := e.loginOperator("aiko"), e.loginOperator("ren")
	body := OpenRequestRequest{Kind: people.KindSetRoles, Payload: json.RawMessage(`{"operator":"kenji","roles":["approver"]}`), Reason: "team change", RequiredRole: people.RoleAdmin}
	r := e.raw("POST", "/v1/requests", aiko, body)
	if r.status != http.StatusPreconditionRequired {
		t.Fatalf("unsigned request = %d %s; want 428", r.status, r.body)
	}
	var ch SignatureRequired
	r.json(t, &ch)
	if ch.ID == "" || ch.Expires == nil || ch.RPID != "localhost" || len(ch.Credentials) != 1 {
		t.Fatalf("challenge %+v", ch)
	}
	d, _ := base64.RawURLEncoding.DecodeString(ch.Challenge)
	// The digest is the command's: the same body with the given id and
	// expiry, built by the core's own function.
	want, _ := e.srv.OpenRequestCommand("aiko", OpenRequestRequest{ID: ch.ID, Expires: &Time{*ch.Expires}, Kind: body.Kind, Payload: body.Payload, Reason: body.Reason, RequiredRole: body.RequiredRole})
	if _, dg, _ := core.SignedDigest(want); !bytes.Equal(dg[:], d) {
		t.Fatal("challenge is not the digest of the command")
	}
	send := func(tok string, a passkey.Assertion, reason string) resp {
		b := body
		b.ID, b.Expires, b.Assertion, b.Reason = ch.ID, &Time{*ch.Expires}, AssertionJSON(a), reason
		return e.raw("POST", "/v1/requests", tok, b)
	}
	renSig, _ := e.team.Get("ren").Key.Assert(ch.RPID, ch.Origin, d)
	if r := send(aiko, renSig, body.Reason); r.status != 403 {
		t.Fatalf("aiko's request with ren's signature = %d %s", r.status, r.body)
	}
	aikoSig, _ := e.team.Get("aiko").Key.Assert(ch.RPID, ch.Origin, d)
	if r := send(aiko, aikoSig, "another reason"); r.status != 403 {
		t.Fatalf("a signature over other bytes = %d %s", r.status, r.body)
	}
	if r := send(aiko, aikoSig, body.Reason); r.status != 201 {
		t.Fatalf("signed request = %d %s", r.status, r.body)
	}
	if r := send(aiko, aikoSig, body.Reason); r.status != 409 {
		t.Fatalf("replayed request = %d %s", r.status, r.body)
	}
	// Approving: ren's assertion only; aiko's own refused.
	if r := e.do("POST", "/v1/requests/"+ch.ID+"/approve", aiko, DecideRequest{Reason: "mine"}); r.status != 403 {
		t.Fatalf("self-approval = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests/"+ch.ID+"/approve", ren, DecideRequest{Reason: "agreed"}); r.status != 200 {
		t.Fatalf("approval = %d %s", r.status, r.body)
	}
	// The journal holds the assertions: the entries verify again.
	var seen int
	e.core.Journal().Scan(1, func(en journal.Entry) error {
		c, _ := core.DecodeCommand(en.Kind, en.Payload)
		if x, ok := c.(core.DecideRequest); ok && x.ID == ch.ID && x.Decider == "ren" && x.Assertion != nil {
			seen++
		}
		return nil
	})
	if seen != 1 {
		t.Fatalf("%d journaled approvals with an assertion", seen)
	}
}

// TestEnrolAndSignIn: a new operator asked by one admin and approved by
// another enrols a CLI key with their code; it is pending, so they cannot
// sign in, until two other admins approve it.
func TestEnrolAndSignIn(t *testing.T) {
	e := newEnv(t)
	aiko, ren := e.loginOperator("aiko"), e.loginOperator("ren")
	code := "mio-one-time-code-123"
	h := sha256.Sum256([]byte(code))
	payload, _ := json.Marshal(apiAddOperator{Operator: "mio", Roles: []people.Role{people.RoleAuditor}, Code: hex.EncodeToString(h[:]), CodeExpires: Time{e.clock.Now().Add(48 * time.Hour)}})
	var opened map[string]string
	r := e.do("POST", "/v1/requests", aiko, OpenRequestRequest{Kind: people.KindAddOperator, Payload: payload, Reason: "new auditor", RequiredRole: people.RoleAdmin})
	if r.status != 201 {
		t.Fatalf("add_operator = %d %s", r.status, r.body)
	}
	r.json(t, &opened)
	if r := e.do("POST", "/v1/requests/"+opened["id"]+"/approve", ren, DecideRequest{Reason: "agreed"}); r.status != 200 {
		t.Fatalf("approve add_operator = %d %s", r.status, r.body)
	}
	k, _ := passkey.NewSoftKey(passkey.AlgES256)
	if r := e.raw("POST", "/v1/operators/enrol/key", "", EnrolKeyRequest{Operator: "mio", Code: "guess", PublicKey: k.PublicKey()}); r.status != 403 {
		t.Fatalf("enrol with a wrong code = %d %s", r.status, r.body)
	}
	r = e.raw("POST", "/v1/operators/enrol/key", "", EnrolKeyRequest{Operator: "mio", Code: code, PublicKey: k.PublicKey(), Label: "mio's key"})
	if r.status != 201 {
		t.Fatalf("enrol = %d %s", r.status, r.body)
	}
	var er EnrolResponse
	r.json(t, &er)
	if er.Active || er.Fingerprint != people.Fingerprint(k.PublicKey()) {
		t.Fatalf("enrolment %+v", er)
	}
	if r := e.raw("POST", "/v1/operators/login/begin", "", BeginRequest{Operator: "mio"}); r.status != 401 {
		t.Fatalf("sign-in with a pending credential = %d %s", r.status, r.body)
	}
	cred, _ := json.Marshal(people.CredentialPayload{Operator: "mio", Credential: k.ID(), Fingerprint: er.Fingerprint})
	r = e.do("POST", "/v1/requests", ren, OpenRequestRequest{Kind: people.KindEnrolCredential, Payload: cred, Reason: "fingerprint read out in person", RequiredRole: people.RoleAdmin})
	if r.status != 201 {
		t.Fatalf("enrol_credential = %d %s", r.status, r.body)
	}
	r.json(t, &opened)
	if r := e.do("POST", "/v1/requests/"+opened["id"]+"/approve", aiko, DecideRequest{Reason: "compared"}); r.status != 200 {
		t.Fatalf("approve enrol_credential = %d %s", r.status, r.body)
	}
	e.team = teamWith(e, "mio", k)
	mio := e.loginOperator("mio")
	if r := e.do("GET", "/v1/me", mio, nil); r.status != 200 || !strings.Contains(string(r.body), "auditor") {
		t.Fatalf("mio's session = %d %s", r.status, r.body)
	}
	// An auditor reads and writes nothing through the CLI's route.
	inc := core.OpenIncident{Incident: incidentOf("inc-mio", "mio")}
	if r := e.raw("POST", "/v1/commands", mio, CommandRequest{Kind: inc.Kind().String(), Payload: inc.AppendPayload(nil)}); r.status != 403 {
		t.Fatalf("an auditor's command = %d %s", r.status, r.body)
	}
	// The code is used up.
	k2, _ := passkey.NewSoftKey(passkey.AlgEdDSA)
	if r := e.raw("POST", "/v1/operators/enrol/key", "", EnrolKeyRequest{Operator: "mio", Code: code, PublicKey: k2.PublicKey()}); r.status != 403 {
		t.Fatalf("code used twice = %d %s", r.status, r.body)
	}
}

// TestCommandsRoute: the CLI's route journals only as the session's
// operator, and signed kinds only with their assertion.
func TestCommandsRoute(t *testing.T) {
	e := newEnv(t)
	kenji := e.loginOperator("kenji")
	send := func(c core.Command, a json.RawMessage) resp {
		return e.raw("POST", "/v1/commands", kenji, CommandRequest{Kind: c.Kind().String(), Payload: c.AppendPayload(nil), Assertion: a})
	}
	note := core.OpenIncident{Incident: incidentOf("inc-1", "aiko")}
	if r := send(note, nil); r.status != 403 {
		t.Fatalf("a command in another operator's name = %d %s", r.status, r.body)
	}
	note.Incident.Detector = "kenji"
	if r := send(note, nil); r.status != 200 {
		t.Fatalf("an incident opened = %d %s", r.status, r.body)
	}
	if r := send(core.SetWithdrawalRules{Actor: "kenji"}, nil); r.status != 400 {
		t.Fatalf("a kind not given through the route = %d %s", r.status, r.body)
	}
	ex := core.ExecuteCompensation{Plan: "none", From: 0, Count: 1, Actor: "kenji"}
	if r := send(ex, nil); r.status != 428 {
		t.Fatalf("unsigned execution = %d %s", r.status, r.body)
	}
	_, d, _ := core.SignedDigest(ex)
	a, _ := e.team.Get("kenji").Key.Assert("localhost", e.http.URL, d[:])
	if r := send(ex, AssertionJSON(a)); r.status != 404 {
		t.Fatalf("signed execution of an unknown plan = %d %s", r.status, r.body)
	}
}

// BenchmarkApprovalThroughAPI measures a signed approval over HTTP: the
// request's 428 answer, the client's signature, the core's verification
// and journaling, per approval.
func BenchmarkApprovalThroughAPI(b *testing.B) {
	e := newBenchEnv(b)
	aiko, kenji := e.loginOperator("aiko"), e.loginOperator("kenji")
	e.raw("POST", "/v1/halts", aiko, HaltRequest{Switch: "BTC:withdraw", Reason: "bench"})
	ids := make([]string, b.N)
	for i := range ids {
		payload := json.RawMessage(`{"switch":"BTC:withdraw"}`)
		r := e.do("POST", "/v1/requests", aiko, OpenRequestRequest{Kind: core.KindLiftHalt, Payload: payload, Reason: "bench", RequiredRole: people.RoleApprover})
		if r.status != 201 {
			b.Fatalf("open = %d %s", r.status, r.body)
		}
		var m map[string]string
		r.json(b, &m)
		ids[i] = m["id"]
	}
	b.ResetTimer()
	for i := range b.N {
		// Rejections, so that every approval decides a pending request.
		if r := e.do("POST", "/v1/requests/"+ids[i]+"/reject", kenji, DecideRequest{Reason: "bench"}); r.status != 200 {
			b.Fatalf("decide = %d %s", r.status, r.body)
		}
	}
}

// BenchmarkOperatorLogin measures a sign-in with a credential: begin, the
// client's signature, finish (go-webauthn's check, then the core's).
func BenchmarkOperatorLogin(b *testing.B) {
	e := newBenchEnv(b)
	for b.Loop() {
		e.loginOperator("kenji")
	}
}

func teamWith(e *env, name string, k *passkey.SoftKey) *operators.Team {
	ops := e.team.Operators()
	ops = append(ops, &operators.Operator{Name: name, Roles: []people.Role{people.RoleAuditor}, Key: k})
	return operators.NewWithKeys(e.team.RP, ops...)
}

func incidentOf(id, detector string) incident.Incident {
	return incident.Incident{ID: id, Detector: detector, Reason: "seen by an operator"}
}
