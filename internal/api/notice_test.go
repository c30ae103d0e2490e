package api

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"kinko/internal/core"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// mail is one message the test SMTP server received.
type mail struct {
	From string
	To   []string
	Data string
}

// inbox is a real SMTP server (go-smtp) on loopback that keeps what it
// receives.
type inbox struct {
	mu   sync.Mutex
	got  []mail
	more chan struct{}
	addr string
}

type smtpSession struct {
	in  *inbox
	cur mail
}

func (s *smtpSession) Reset()                                      { s.cur = mail{} }
func (s *smtpSession) Logout() error                               { return nil }
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error { s.cur.From = from; return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(b)
	s.in.mu.Lock()
	s.in.got = append(s.in.got, s.cur)
	s.in.mu.Unlock()
	select {
	case s.in.more <- struct{}{}:
	default:
	}
	return nil
}

// startSMTP starts the test's SMTP server; it stops with the test.
func startSMTP(t *testing.T) *inbox {
	in := &inbox{more: make(chan struct{}, 1)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{in: in}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.addr = ln.Addr().String()
	go srv.Serve(ln) // returns when the server closes
	t.Cleanup(func() { srv.Close() })
	return in
}

// wait returns the mails once there are at least n (or fails after a
// generous time: a mail that never comes is the failure).
func (in *inbox) wait(t *testing.T, n int) []mail {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		in.mu.Lock()
		got := append([]mail(nil), in.got...)
		in.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-in.more:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d mails received; want %d", len(got), n)
		}
	}
}

var freezeLinkRe = regexp.MustCompile(`http://kinko\.test/v1/freeze\?token=[A-Za-z0-9_-]+`)

// TestNoticesMailedAndListed: every new intent key, address, password,
// second factor and new-device login (and every revocation and freeze)
// is a notice: listed at GET /v1/me/notices and delivered over SMTP to
// the customer's address, each with a freeze link. Following a mail's
// link freezes the customer's withdrawals at once and works once; the
// core refuses their withdrawals; lifting the freeze takes a fresh login
// and a step-up.
func TestNoticesMailedAndListed(t *testing.T) {
	in := startSMTP(t)
	e := newEnv(t)
	e.mail = MailConfig{Addr: in.addr, From: "notices@kinko.test", Poll: 20 * time.Millisecond}
	e.restart()
	id, tok := e.signUp("hanako@example.jp")
	ops := e.loginOperator("kenji")
	if r := e.do("POST", fmt.Sprintf("/v1/customers/%d/kyc", id), ops, KYCRequest{KYC: people.KYCVerified, Reason: "ok"}); r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	const addr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	step := func(path string, body any) {
		t.Helper()
		if r := e.do("POST", path, tok, body, "X-TOTP", e.code("hanako@example.jp")); r.status/100 != 2 {
			t.Fatalf("%s = %d %s", path, r.status, r.body)
		}
	}
	step("/v1/me/intent-keys", IntentKeyRequest{PublicKey: hex.EncodeToString(pub)})
	step("/v1/me/whitelist", WhitelistRequest{Asset: "BTC", Address: addr})
	step("/v1/me/password", PasswordRequest{Password: testPassword, NewPassword: "a new long passphrase"})
	r := e.do("POST", "/v1/me/totp", tok, TOTPRequest{Password: "a new long passphrase"}, "X-TOTP", e.code("hanako@example.jp"))
	var tr TOTPResponse
	r.json(t, &tr)
	if r.status != 200 || tr.TOTPSecret == "" || tr.TOTPSecret == e.secrets["hanako@example.jp"] {
		t.Fatalf("re-enrol = %d %s", r.status, r.body)
	}
	e.secrets["hanako@example.jp"] = tr.TOTPSecret
	// A login with a device id the customer has used is no news; one
	// from another device is.
	login := func(device string) LoginResponse {
		t.Helper()
		r := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "hanako@example.jp", Password: "a new long passphrase", TOTP: e.code("hanako@example.jp"), Device: device})
		var lr LoginResponse
		r.json(t, &lr)
		if r.status != 200 {
			t.Fatalf("login = %d %s", r.status, r.body)
		}
		return lr
	}
	first := login("")
	login(first.Device)
	tok = login("a phone").Token
	if r := e.do("POST", "/v1/me/intent-keys/"+hex.EncodeToString(pub)+"/revoke", tok, nil); r.status != 200 {
		t.Fatalf("revoke = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/me/whitelist/remove", tok, WhitelistRequest{Asset: "BTC", Address: addr}); r.status != 200 {
		t.Fatalf("remove = %d %s", r.status, r.body)
	}
	want := []people.NoticeKind{people.NoticeNewDevice, people.NoticeIntentKey, people.NoticeAddress, people.NoticePassword, people.NoticeSecondFactor,
		people.NoticeNewDevice, people.NoticeNewDevice, people.NoticeIntentKeyGone, people.NoticeAddressGone}
	var list struct{ Items []NoticeView }
	e.do("GET", "/v1/me/notices", tok, nil).json(t, &list)
	if len(list.Items) != len(want) {
		t.Fatalf("%d notices listed; want %d: %+v", len(list.Items), len(want), list.Items)
	}
	for i, k := range want {
		if got := list.Items[len(want)-1-i]; got.Kind != string(k) || got.FreezeURL == "" {
			t.Errorf("notice %d = %+v; want %s with a freeze link", i, got, k)
		}
	}
	mails := in.wait(t, len(want))
	links := map[string]bool{}
	for i, m := range mails {
		if len(m.To) != 1 || m.To[0] != "hanako@example.jp" || m.From != "notices@kinko.test" || !strings.Contains(m.Data, "Subject: kinko: "+noticeTitle(want[i])) {
			t.Errorf("mail %d: from %s to %v:\n%s", i, m.From, m.To, m.Data)
		}
		link := freezeLinkRe.FindString(m.Data)
		if link == "" {
			t.Errorf("mail %d has no freeze link:\n%s", i, m.Data)
		}
		links[link] = true
	}
	for _, n := range list.Items {
		if !links[n.FreezeURL] {
			t.Errorf("notice %d's link %s was not mailed", n.Seq, n.FreezeURL)
		}
	}
	t.Logf("%d notices listed and %d mails received over SMTP, each with its freeze link", len(list.Items), len(mails))

	// The mailed link of the new-device notice freezes at once.
	u, _ := url.Parse(freezeLinkRe.FindString(mails[6].Data))
	follow := func() *http.Response {
		res, err := http.Get(e.http.URL + u.RequestURI())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := follow(); res.StatusCode != 200 {
		t.Fatalf("freeze link = %d", res.StatusCode)
	}
	if res := follow(); res.StatusCode != 409 {
		t.Fatalf("freeze link used twice = %d; want 409", res.StatusCode)
	}
	bad := []byte(u.Query().Get("token"))
	bad[5] ^= 1
	if res, _ := http.Get(e.http.URL + "/v1/freeze?token=" + string(bad)); res.StatusCode != 403 {
		t.Fatalf("forged freeze link = %d; want 403", res.StatusCode)
	}
	// The core refuses the customer's withdrawals.
	in1 := withdraw.Intent{RequestID: "w-frozen", Asset: "BTC", Address: addr, Amount: withdraw.AmountOf(1000), Expiry: e.clock.Now().Add(time.Hour).Unix()}
	sig, _ := in1.Sign(priv)
	wr := WithdrawalRequest{RequestID: in1.RequestID, Asset: "BTC", Address: addr, Amount: WideUnits(in1.Amount), Expiry: Time{time.Unix(in1.Expiry, 0).UTC()}, PublicKey: hex.EncodeToString(pub), Signature: hex.EncodeToString(sig)}
	if r := e.do("POST", "/v1/me/withdrawals", tok, wr, "X-TOTP", e.code("hanako@example.jp")); r.status != 403 || !bytes.Contains(r.body, []byte("frozen")) {
		t.Fatalf("withdrawal while frozen = %d %s; want 403 frozen", r.status, r.body)
	}
	// Lifting: not from an old session, even with a code.
	e.clock.Add(11 * time.Minute)
	if r := e.do("POST", "/v1/me/unfreeze", tok, nil, "X-TOTP", e.code("hanako@example.jp")); r.status != 403 {
		t.Fatalf("unfreeze from an old session = %d %s; want 403", r.status, r.body)
	}
	fresh := login("a phone").Token
	if r := e.do("POST", "/v1/me/unfreeze", fresh, nil); r.status != 403 {
		t.Fatalf("unfreeze without a code = %d %s; want 403", r.status, r.body)
	}
	if r := e.do("POST", "/v1/me/unfreeze", fresh, nil, "X-TOTP", e.code("hanako@example.jp")); r.status != 200 {
		t.Fatalf("unfreeze fresh with a code = %d %s", r.status, r.body)
	}
	var frozen *people.Freeze
	e.core.Read(func(st *core.State) { frozen = st.People.Frozen(id) })
	if frozen != nil {
		t.Fatalf("still frozen: %+v", frozen)
	}
	in.wait(t, len(want)+2) // the freeze and the lift are told too
}
