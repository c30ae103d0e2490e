package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/passkey"
	"kinko/internal/people"
)

// Operators sign in and sign with WebAuthn credentials. The ceremonies'
// options and the registration's attestation are go-webauthn's; what an
// operator signs is checked again by the core's apply (passkey.Verify)
// against the credential journaled for them, so this server cannot act in
// an operator's name.

// Bounds of the WebAuthn ceremonies in flight.
const (
	maxCeremonies = 4096
	ceremonyTTL   = 5 * time.Minute
)

// webCeremony is a registration or login begun and not yet finished.
type webCeremony struct {
	operator string
	session  webauthn.SessionData
	login    *core.OperatorLogin // the login it opens
	token    string
	code     string
	expires  time.Time
}

type ceremonies struct {
	mu sync.Mutex
	m  map[string]*webCeremony // by challenge, base64url
}

func (c *ceremonies) put(challenge string, x *webCeremony, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*webCeremony{}
	}
	for k, v := range c.m {
		if now.After(v.expires) {
			delete(c.m, k)
		}
	}
	if len(c.m) >= maxCeremonies {
		return fmt.Errorf("%w: too many sign-ins in progress; try again in a minute", errForbidden)
	}
	c.m[challenge] = x
	return nil
}

// take returns and forgets the ceremony of a challenge: each is finished
// once.
func (c *ceremonies) take(challenge string, now time.Time) (*webCeremony, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	x, ok := c.m[challenge]
	delete(c.m, challenge)
	if !ok || now.After(x.expires) {
		return nil, false
	}
	return x, true
}

// opUser is an operator as go-webauthn sees them.
type opUser struct{ o people.Operator }

func (u opUser) WebAuthnID() []byte          { return []byte("operator:" + u.o.Name) }
func (u opUser) WebAuthnName() string        { return u.o.Name }
func (u opUser) WebAuthnDisplayName() string { return u.o.Name }
func (u opUser) WebAuthnCredentials() []webauthn.Credential {
	var out []webauthn.Credential
	for _, k := range u.o.Keys {
		out = append(out, webauthn.Credential{ID: k.ID, PublicKey: k.PublicKey, Authenticator: webauthn.Authenticator{SignCount: k.Counter},
			Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: true}})
	}
	return out
}

var errNoRP = errors.New("no operators yet: bootstrap them on the core's host (kinko operators bootstrap)")

// relyingParty returns go-webauthn for the journal's relying party.
func (s *Server) relyingParty() (*webauthn.WebAuthn, passkey.RP, error) {
	var rp passkey.RP
	s.core.Read(func(st *core.State) { rp = st.People.RP() })
	if rp.ID == "" {
		return nil, rp, errNoRP
	}
	w, err := webauthn.New(&webauthn.Config{RPID: rp.ID, RPDisplayName: "kinko operators", RPOrigins: rp.Origins})
	return w, rp, err
}

// BeginRequest is the body of the begin routes.
type BeginRequest struct {
	Operator string `json:"operator"`
	Code     string `json:"code,omitempty"`
}

// BeginResponse is a ceremony's options for navigator.credentials, and
// the origin a software credential signs as.
type BeginResponse struct {
	PublicKey json.RawMessage `json:"public_key"` // WebAuthn's own options, named as the W3C standard names them
	Origin    string          `json:"origin"`
}

// FinishRequest carries what navigator.credentials returned, as its
// JSON (PublicKeyCredential.toJSON), or a software credential's same form.
type FinishRequest struct {
	Operator   string          `json:"operator"`
	Code       string          `json:"code,omitempty"`
	Label      string          `json:"label,omitempty"`
	Credential json.RawMessage `json:"credential"`
}

var errLoginKey = errors.New("sign-in failed: unknown operator, or the credential did not verify")

func (s *Server) operatorOf(name string) (people.Operator, bool) {
	var o people.Operator
	var ok bool
	s.core.Read(func(st *core.State) { o, ok = st.People.Operator(name) })
	return o, ok
}

// BeginLogin starts an operator's sign-in: the challenge is the digest of
// the exact session the assertion will open.
func (s *Server) BeginLogin(name string) (BeginResponse, error) {
	w, rp, err := s.relyingParty()
	if err != nil {
		return BeginResponse{}, err
	}
	o, ok := s.operatorOf(name)
	if !ok || len(o.Keys) == 0 {
		return BeginResponse{}, errLoginKey
	}
	tok, h, err := auth.NewToken()
	if err != nil {
		return BeginResponse{}, err
	}
	now := s.now()
	login := core.OperatorLogin{Session: people.Session{TokenHash: h, Kind: people.SessionOperator, Operator: name, Expires: now.Add(s.cfg.SessionTTL).UnixNano()}}
	_, digest, _ := core.SignedDigest(login)
	opts, sess, err := w.BeginLogin(opUser{o}, webauthn.WithChallenge(digest[:]), webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return BeginResponse{}, err
	}
	ch := base64.RawURLEncoding.EncodeToString(digest[:])
	if err := s.cer.put(ch, &webCeremony{operator: name, session: *sess, login: &login, token: tok, expires: now.Add(ceremonyTTL)}, now); err != nil {
		return BeginResponse{}, err
	}
	b, _ := json.Marshal(opts.Response)
	return BeginResponse{PublicKey: b, Origin: rp.Origins[0]}, nil
}

// FinishLogin checks the assertion (go-webauthn, then the core's apply)
// and opens the session.
func (s *Server) FinishLogin(ctx context.Context, req FinishRequest) (LoginResponse, error) {
	par, err := protocol.ParseCredentialRequestResponseBytes(req.Credential)
	if err != nil {
		return LoginResponse{}, fmt.Errorf("%w: credential: %v", errBadJSON, err)
	}
	now := s.now()
	x, ok := s.cer.take(par.Response.CollectedClientData.Challenge, now)
	if !ok || x.login == nil || x.operator != req.Operator {
		return LoginResponse{}, errLoginKey
	}
	w, _, err := s.relyingParty()
	if err != nil {
		return LoginResponse{}, err
	}
	o, ok := s.operatorOf(req.Operator)
	if !ok {
		return LoginResponse{}, errLoginKey
	}
	if _, err := w.ValidateLogin(opUser{o}, x.session, par); err != nil {
		s.log.Info("operator sign-in refused", "operator", req.Operator, "err", err)
		return LoginResponse{}, errLoginKey
	}
	a := assertionOf(par)
	if _, err := s.submit(ctx, core.WithAssertion(*x.login, &a)); err != nil {
		if errors.Is(err, people.ErrAssertion) || errors.Is(err, people.ErrKeyUnknown) || errors.Is(err, people.ErrReplayed) {
			return LoginResponse{}, errLoginKey
		}
		return LoginResponse{}, err
	}
	return LoginResponse{Token: x.token, Expires: time.Unix(0, x.login.Session.Expires).UTC()}, nil
}

// assertionOf is the assertion in go-webauthn's parse of a credential.
func assertionOf(par *protocol.ParsedCredentialAssertionData) passkey.Assertion {
	return passkey.Assertion{Credential: par.RawID, AuthenticatorData: par.Raw.AssertionResponse.AuthenticatorData,
		ClientDataJSON: par.Raw.AssertionResponse.ClientDataJSON, Signature: par.Raw.AssertionResponse.Signature}
}

// ParseAssertion reads an assertion in PublicKeyCredential JSON.
func ParseAssertion(b []byte) (*passkey.Assertion, error) {
	if len(bytes.TrimSpace(b)) == 0 || bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil, nil
	}
	par, err := protocol.ParseCredentialRequestResponseBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: assertion: %v", errBadJSON, err)
	}
	a := assertionOf(par)
	return &a, nil
}

// AssertionJSON writes an assertion as PublicKeyCredential JSON, the form
// the routes take: what a software credential sends.
func AssertionJSON(a passkey.Assertion) json.RawMessage {
	id := base64.RawURLEncoding.EncodeToString(a.Credential)
	b, _ := json.Marshal(map[string]any{"id": id, "rawId": id, "type": "public-key", "response": map[string]string{
		"authenticatorData": base64.RawURLEncoding.EncodeToString(a.AuthenticatorData),
		"clientDataJSON":    base64.RawURLEncoding.EncodeToString(a.ClientDataJSON),
		"signature":         base64.RawURLEncoding.EncodeToString(a.Signature)}})
	return b
}

// enrolCodeOK tells whether code is the operator's unused enrolment code.
func (s *Server) enrolCodeOK(o people.Operator, code string) bool {
	return o.Enrol != nil && s.now().UnixNano() < o.Enrol.Expires && auth.HashToken(code) == o.Enrol.Code
}

// BeginEnrol starts registering a credential with an enrolment code.
func (s *Server) BeginEnrol(req BeginRequest) (BeginResponse, error) {
	w, rp, err := s.relyingParty()
	if err != nil {
		return BeginResponse{}, err
	}
	o, ok := s.operatorOf(req.Operator)
	if !ok || !s.enrolCodeOK(o, req.Code) {
		return BeginResponse{}, people.ErrEnrolCode
	}
	var excl []protocol.CredentialDescriptor
	for _, k := range append(append([]people.Key(nil), o.Keys...), o.Pending...) {
		excl = append(excl, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: k.ID})
	}
	opts, sess, err := w.BeginRegistration(opUser{o},
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired, ResidentKey: protocol.ResidentKeyRequirementPreferred}),
		webauthn.WithCredentialParameters([]protocol.CredentialParameter{{Type: protocol.PublicKeyCredentialType, Algorithm: passkey.AlgES256}, {Type: protocol.PublicKeyCredentialType, Algorithm: passkey.AlgEdDSA}}),
		webauthn.WithExclusions(excl))
	if err != nil {
		return BeginResponse{}, err
	}
	now := s.now()
	if err := s.cer.put(sess.Challenge, &webCeremony{operator: req.Operator, session: *sess, code: req.Code, expires: now.Add(ceremonyTTL)}, now); err != nil {
		return BeginResponse{}, err
	}
	b, _ := json.Marshal(opts.Response)
	return BeginResponse{PublicKey: b, Origin: rp.Origins[0]}, nil
}

// EnrolResponse says whether the credential is active (a founder's first)
// or pending two admins, and its fingerprint to read out to them.
type EnrolResponse struct {
	Operator    string `json:"operator"`
	Active      bool   `json:"active"`
	Fingerprint string `json:"fingerprint"`
	Credential  string `json:"credential"` // base64url id
}

// FinishEnrol checks the registration (go-webauthn) and journals the
// credential with the code.
func (s *Server) FinishEnrol(ctx context.Context, req FinishRequest) (EnrolResponse, error) {
	pcc, err := protocol.ParseCredentialCreationResponseBytes(req.Credential)
	if err != nil {
		return EnrolResponse{}, fmt.Errorf("%w: credential: %v", errBadJSON, err)
	}
	x, ok := s.cer.take(pcc.Response.CollectedClientData.Challenge, s.now())
	if !ok || x.login != nil || x.operator != req.Operator || x.code != req.Code {
		return EnrolResponse{}, people.ErrEnrolCode
	}
	w, _, err := s.relyingParty()
	if err != nil {
		return EnrolResponse{}, err
	}
	o, ok := s.operatorOf(req.Operator)
	if !ok {
		return EnrolResponse{}, people.ErrOperatorUnknown
	}
	cred, err := w.CreateCredential(opUser{o}, x.session, pcc)
	if err != nil {
		return EnrolResponse{}, fmt.Errorf("%w: registration: %v", people.ErrInvalid, err)
	}
	return s.enrol(ctx, req.Operator, req.Code, people.Key{ID: cred.ID, PublicKey: cred.PublicKey, Label: labelOr(req.Label, "security key")})
}

func labelOr(l, def string) string {
	if l == "" {
		return def
	}
	return l
}

func (s *Server) enrol(ctx context.Context, operator, code string, k people.Key) (EnrolResponse, error) {
	v, err := s.submit(ctx, core.EnrolCredential{Operator: operator, Code: code, Key: k})
	if err != nil {
		return EnrolResponse{}, err
	}
	active, _ := v.(bool)
	return EnrolResponse{Operator: operator, Active: active, Fingerprint: people.Fingerprint(k.PublicKey), Credential: base64.RawURLEncoding.EncodeToString(k.ID)}, nil
}

// EnrolKeyRequest enrols a software credential (a CLI key) with a code.
type EnrolKeyRequest struct {
	Operator  string `json:"operator"`
	Code      string `json:"code"`
	PublicKey []byte `json:"public_key"` // COSE_Key
	Label     string `json:"label,omitempty"`
}

// EnrolKey journals a CLI key's public key with an enrolment code. Its id
// is SHA-256 of the COSE key, as passkey.SoftKey makes it.
func (s *Server) EnrolKey(ctx context.Context, req EnrolKeyRequest) (EnrolResponse, error) {
	if _, err := passkey.ParseKey(req.PublicKey); err != nil {
		return EnrolResponse{}, fmt.Errorf("%w: %v", people.ErrInvalid, err)
	}
	id := auth.HashToken(string(req.PublicKey))
	return s.enrol(ctx, req.Operator, req.Code, people.Key{ID: id[:], PublicKey: req.PublicKey, Label: labelOr(req.Label, "cli key")})
}

// SignatureRequired is the answer (428) of a signed route called without
// an assertion: the challenge to sign (the digest of the exact command),
// and the values to send again with the assertion so that the command is
// the same.
type SignatureRequired struct {
	Problem
	Challenge   string   `json:"challenge"`
	RPID        string   `json:"rp_id"`
	Origin      string   `json:"origin"`
	Credentials []string `json:"credentials"`
	ID          string   `json:"id,omitempty"`
	// Expires is the request's expiry, RFC 3339 to the nanosecond: sent
	// back as it is.
	Expires *time.Time `json:"expires,omitempty"`
}

// errSignatureRequired is what a signed command without an assertion gets.
var errSignatureRequired = errors.New("signature required")

// signed submits cmd carrying assertion, or, without one, answers 428 with
// what to sign.
func (s *Server) signed(w http.ResponseWriter, r *http.Request, cmd core.Command, a *passkey.Assertion, id string, expires int64) (any, bool) {
	if err := s.checkShown(cmd); err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	if a == nil {
		s.challenge(w, cmd, id, expires)
		return nil, false
	}
	v, err := s.submit(r.Context(), core.WithAssertion(cmd, a))
	if err != nil {
		s.fail(w, r, err)
		return v, false
	}
	return v, true
}

// challenge writes the 428 answer for cmd.
func (s *Server) challenge(w http.ResponseWriter, cmd core.Command, id string, expires int64) {
	signer, digest, _ := core.SignedDigest(cmd)
	res := SignatureRequired{Problem: Problem{Type: problemType("signature_required"), Title: "signature required", Status: http.StatusPreconditionRequired,
		Detail: "sign the challenge with your credential and send the request again with the assertion and these values"},
		Challenge: base64.RawURLEncoding.EncodeToString(digest[:]), ID: id, Credentials: []string{}}
	res.Code = "signature_required"
	if expires != 0 {
		t := time.Unix(0, expires).UTC()
		res.Expires = &t
	}
	var rp passkey.RP
	s.core.Read(func(st *core.State) {
		rp = st.People.RP()
		if o, ok := st.People.Operator(signer); ok {
			for _, k := range o.Keys {
				res.Credentials = append(res.Credentials, base64.RawURLEncoding.EncodeToString(k.ID))
			}
		}
	})
	res.RPID = rp.ID
	if len(rp.Origins) > 0 {
		res.Origin = rp.Origins[0]
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusPreconditionRequired)
	json.NewEncoder(w).Encode(res)
}

// newRequestID draws a request id.
func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("req-%x", b)
}

func (s *Server) registerOperators() {
	s.handle("POST", "/v1/operators/login/begin", true, func(w http.ResponseWriter, r *http.Request) {
		if !s.limit.allow("operator/"+clientAddr(r), s.now()) {
			writeProblem(w, http.StatusTooManyRequests, "too many attempts", "try again in a minute")
			return
		}
		var req BeginRequest
		if err := decodeBody(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := s.BeginLogin(req.Operator)
		if err != nil {
			s.failLogin(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	s.handle("POST", "/v1/operators/login/finish", true, func(w http.ResponseWriter, r *http.Request) {
		var req FinishRequest
		if err := decodeBody(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := s.FinishLogin(r.Context(), req)
		if err != nil {
			s.failLogin(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	s.handle("POST", "/v1/operators/enrol/begin", true, func(w http.ResponseWriter, r *http.Request) {
		if !s.limit.allow("enrol/"+clientAddr(r), s.now()) {
			writeProblem(w, http.StatusTooManyRequests, "too many attempts", "try again in a minute")
			return
		}
		var req BeginRequest
		if err := decodeBody(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := s.BeginEnrol(req)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	s.handle("POST", "/v1/operators/enrol/finish", true, func(w http.ResponseWriter, r *http.Request) {
		var req FinishRequest
		if err := decodeBody(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := s.FinishEnrol(r.Context(), req)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, res)
	})
	s.handle("POST", "/v1/operators/enrol/key", true, func(w http.ResponseWriter, r *http.Request) {
		if !s.limit.allow("enrol/"+clientAddr(r), s.now()) {
			writeProblem(w, http.StatusTooManyRequests, "too many attempts", "try again in a minute")
			return
		}
		var req EnrolKeyRequest
		if err := decodeBody(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := s.EnrolKey(r.Context(), req)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, res)
	})
	s.handle("POST", "/v1/me/credentials", true, s.idempotent(s.addCredential))
	s.handle("POST", "/v1/commands", true, s.idempotent(s.operatorCommand))
}

func (s *Server) failLogin(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errLoginKey) {
		writeProblem(w, http.StatusUnauthorized, "login failed", err.Error())
		return
	}
	if errors.Is(err, errNoRP) {
		writeProblem(w, http.StatusConflict, "conflict", err.Error())
		return
	}
	s.fail(w, r, err)
}

// decodeBody reads and strictly decodes a JSON body.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	return decodeStrict(body, v)
}

// AddCredentialRequest is the body of POST /v1/me/credentials: a further
// credential (a CLI key's COSE public key), pending until two admins
// approve an enrol_credential request for it.
type AddCredentialRequest struct {
	PublicKey []byte          `json:"public_key"`
	Label     string          `json:"label"`
	Assertion json.RawMessage `json:"assertion,omitempty"`
}

func (s *Server) addCredential(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req AddCredentialRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	a, err := ParseAssertion(req.Assertion)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := passkey.ParseKey(req.PublicKey); err != nil {
		s.fail(w, r, fmt.Errorf("%w: %v", people.ErrInvalid, err))
		return
	}
	id := auth.HashToken(string(req.PublicKey))
	k := people.Key{ID: id[:], PublicKey: req.PublicKey, Label: labelOr(req.Label, "cli key")}
	if _, ok := s.signed(w, r, core.AddCredential{Operator: p.Session.Operator, Key: k}, a, "", 0); ok {
		writeJSON(w, http.StatusCreated, EnrolResponse{Operator: p.Session.Operator, Fingerprint: people.Fingerprint(k.PublicKey), Credential: base64.RawURLEncoding.EncodeToString(k.ID)})
	}
}

// CommandRequest is the body of POST /v1/commands: an operator command by
// its kind's name and its JSON (the core's command type), given as the
// session's operator, with the assertion when the kind is signed. It is
// how the CLI journals through the core instead of opening its data
// directory.
type CommandRequest struct {
	Kind string `json:"kind"`
	// Payload is the command as the journal encodes it (base64 in JSON):
	// the core decodes it with the one decoder it journals with.
	Payload   []byte          `json:"payload"`
	Assertion json.RawMessage `json:"assertion,omitempty"`
}

// CommandResponse is what the command journaled and returned.
type CommandResponse struct {
	Kind  string `json:"kind"`
	Value any    `json:"value,omitempty"`
}

var errNotOperatorCommand = errors.New("not an operator command kind")

// operatorCommands are the kinds an operator may give through
// /v1/commands; each names the actor field the session must match.
var operatorCommands = map[core.Kind]func(core.Command) string{
	core.KindOpenRequest:         func(c core.Command) string { return c.(core.OpenRequest).Request.Requester },
	core.KindDecideRequest:       func(c core.Command) string { return c.(core.DecideRequest).Decider },
	core.KindExecuteCompensation: func(c core.Command) string { return c.(core.ExecuteCompensation).Actor },
	core.KindWriteCompensation:   func(c core.Command) string { return c.(core.WriteCompensation).Plan.Requester },
	core.KindAddPayouts:          nil,
	core.KindOpenIncident:        func(c core.Command) string { return c.(core.OpenIncident).Incident.Detector },
	core.KindNoteIncident:        func(c core.Command) string { return c.(core.NoteIncident).Actor },
	core.KindDenyAddresses:       func(c core.Command) string { return c.(core.DenyAddresses).Actor },
	core.KindRepayOwed:           func(c core.Command) string { return c.(core.RepayOwed).Actor },
	core.KindPrepareCeremony:     func(c core.Command) string { return c.(core.PrepareCeremony).Ceremony.Actor },
	core.KindProposeAsset:        func(c core.Command) string { return c.(core.ProposeAsset).Actor },
}

// writer refuses an operator whose only role is auditor: auditors read.
func (s *Server) writer(p Principal) error {
	o, _ := s.operatorOf(p.Session.Operator)
	for _, r := range o.Roles {
		if r != people.RoleAuditor {
			return nil
		}
	}
	return fmt.Errorf("%w: an auditor reads, and writes nothing", errForbidden)
}

// kindByName finds a command kind by its name.
func kindByName(name string) (core.Kind, bool) {
	for k := range operatorCommands {
		if k.String() == name {
			return k, true
		}
	}
	return 0, false
}

func (s *Server) operatorCommand(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req CommandRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.writer(p); err != nil {
		s.fail(w, r, err)
		return
	}
	kind, ok := kindByName(req.Kind)
	if !ok {
		s.fail(w, r, fmt.Errorf("%w: %w: %q", errBadJSON, errNotOperatorCommand, req.Kind))
		return
	}
	cmd, err := core.DecodeCommand(uint16(kind), req.Payload)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if actor := operatorCommands[kind]; actor != nil && actor(cmd) != p.Session.Operator {
		s.fail(w, r, fmt.Errorf("%w: the command's operator is not the session's", errForbidden))
		return
	}
	if kind == core.KindAddPayouts {
		// A draft's payouts are added by whoever wrote it.
		var author string
		s.core.Read(func(st *core.State) {
			if pl, ok := st.Compensation.Get(cmd.(core.AddPayouts).Plan); ok {
				author = pl.Requester
			}
		})
		if author != p.Session.Operator {
			s.fail(w, r, fmt.Errorf("%w: payouts are added by the plan's writer", errForbidden))
			return
		}
	}
	var v any
	if _, _, signedKind := core.SignedDigest(cmd); signedKind {
		a, err := ParseAssertion(req.Assertion)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if v, ok = s.signed(w, r, cmd, a, "", 0); !ok {
			return
		}
	} else if v, err = s.submit(r.Context(), cmd); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, CommandResponse{Kind: req.Kind, Value: v})
}
