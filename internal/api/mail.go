package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// Every notice (people.Notice: a new intent key or address, a new
// password or second factor, a login from a new device, a freeze) is in
// the journaled state, listed at GET /v1/me/notices, and sent by e-mail
// through an SMTP server, each with a one-click freeze link. The mailer
// follows the state's notices in order from a cursor kept in the API's
// store, advanced only once a notice was accepted by the SMTP server: a
// restart resends at most the notice in flight, and loses none.

// MailConfig configures the SMTP client that sends notices.
type MailConfig struct {
	// Addr is the SMTP server (host:port); empty sends no mail.
	Addr string
	// From is the envelope and header sender.
	From string
	// Username and Password authenticate (PLAIN, over TLS only).
	Username, Password string
	// RequireTLS refuses a server that does not offer STARTTLS; without
	// it STARTTLS is used when offered. TLS verifies the server as Host
	// (default: Addr's host) with the system's roots, or RootCAs.
	RequireTLS bool
	TLS        *tls.Config
	// Poll is how often the mailer looks for new notices; default 1s.
	Poll time.Duration
}

// mailCursorKey keeps the seq of the last notice sent.
var mailCursorKey = []byte("mail/cursor")

// mailer sends notices; its goroutine exits at stop.
type mailer struct {
	s    *Server
	cfg  MailConfig
	kick chan struct{}
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func (s *Server) newMailer(cfg MailConfig) (*mailer, error) {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("api: smtp address %q: %w", cfg.Addr, err)
	}
	if cfg.From == "" || strings.ContainsAny(cfg.From, "\r\n<>") {
		return nil, errors.New("api: smtp: a sender address (--smtp-from) is needed")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	m := &mailer{s: s, cfg: cfg, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if _, c, err := s.idem.db.Get(mailCursorKey); err == nil {
		c.Close()
	} else {
		// Mail first configured on a journal with notices already: those
		// are listed in the API, not mailed now, days late.
		var last uint64
		s.core.Read(func(st *core.State) {
			if n := st.People.NoticesAfter(0, people.MaxNotices); len(n) > 0 {
				last = n[len(n)-1].Seq
			}
		})
		if err := s.idem.db.Set(mailCursorKey, binary.BigEndian.AppendUint64(nil, last), pebble.Sync); err != nil {
			return nil, err
		}
	}
	go m.run()
	return m, nil
}

func (m *mailer) stop() {
	m.once.Do(func() { close(m.quit) })
	<-m.done
}

// poke asks the mailer to look now (after a command that may notify).
func (m *mailer) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// run sends what is due until stop. A failed send is tried again at the
// next poll, backing off to a minute.
func (m *mailer) run() {
	defer close(m.done)
	wait := m.cfg.Poll
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-t.C:
		case <-m.kick:
		}
		if err := m.sendDue(); err != nil {
			m.s.log.Warn("notice mail not sent; will try again", "err", err)
			wait = min(wait*2, time.Minute)
		} else {
			wait = m.cfg.Poll
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

func (m *mailer) cursor() uint64 {
	v, c, err := m.s.idem.db.Get(mailCursorKey)
	if err != nil {
		return 0
	}
	defer c.Close()
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// sendDue sends every notice after the cursor, in order.
func (m *mailer) sendDue() error {
	for {
		var due []people.Notice
		emails := map[ledger.OwnerID]string{}
		m.s.core.Read(func(st *core.State) {
			due = st.People.NoticesAfter(m.cursor(), 64)
			for _, n := range due {
				if c, ok := st.People.Customer(n.Customer); ok {
					emails[n.Customer] = c.Email
				}
			}
		})
		if len(due) == 0 {
			return nil
		}
		for _, n := range due {
			select {
			case <-m.quit:
				return nil
			default:
			}
			if to := emails[n.Customer]; to != "" {
				if err := m.send(to, n); err != nil {
					return err
				}
			}
			if err := m.s.idem.db.Set(mailCursorKey, binary.BigEndian.AppendUint64(nil, n.Seq), pebble.Sync); err != nil {
				return err
			}
		}
	}
}

// noticeTitle is a notice's subject line.
func noticeTitle(k people.NoticeKind) string {
	switch k {
	case people.NoticeIntentKey:
		return "a new withdrawal signing key was added to your account"
	case people.NoticeIntentKeyGone:
		return "a withdrawal signing key was revoked"
	case people.NoticeAddress:
		return "a new withdrawal address was added to your account"
	case people.NoticeAddressGone:
		return "a withdrawal address was removed"
	case people.NoticePassword:
		return "your password was changed"
	case people.NoticeSecondFactor:
		return "a new second factor was enrolled"
	case people.NoticeNewDevice:
		return "a login from a new device"
	case people.NoticeFrozen:
		return "your withdrawals are frozen"
	case people.NoticeUnfrozen:
		return "your withdrawals are unfrozen"
	case people.NoticeSessionRevoked:
		return "a session was ended"
	}
	return "notice"
}

// printable drops control characters from text put into a mail.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// message is the mail of notice n.
func (m *mailer) message(to string, n people.Notice) []byte {
	var b strings.Builder
	at := time.Unix(0, n.Time).UTC()
	fmt.Fprintf(&b, "From: kinko <%s>\r\nTo: <%s>\r\nSubject: kinko: %s\r\nDate: %s\r\nMessage-ID: <notice-%d-%d@kinko>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		m.cfg.From, to, noticeTitle(n.Kind), at.Format(time.RFC1123Z), n.Customer, n.Seq)
	fmt.Fprintf(&b, "%s, at %s (journal entry %d).\r\n\r\n", printable(n.Detail), at.Format(time.RFC3339), n.Seq)
	if n.Kind != people.NoticeFrozen {
		fmt.Fprintf(&b, "If this was not you, freeze your withdrawals at once with this link (it works once):\r\n%s\r\n\r\n", m.s.freezeURL(n))
		b.WriteString("Lifting a freeze takes a fresh login and a code from your authenticator, or our support.\r\n")
	}
	return []byte(b.String())
}

// send delivers one mail through the SMTP server.
func (m *mailer) send(to string, n people.Notice) error {
	host, _, _ := net.SplitHostPort(m.cfg.Addr)
	conn, err := net.DialTimeout("tcp", m.cfg.Addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: %w", err)
	}
	defer c.Close()
	if err := c.Hello("kinko"); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc := m.cfg.TLS
		if tc == nil {
			tc = &tls.Config{ServerName: host}
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("smtp: starttls: %w", err)
		}
	} else if m.cfg.RequireTLS {
		return errors.New("smtp: the server offers no STARTTLS and TLS is required")
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, host)); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	wc, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if _, err := wc.Write(m.message(to, n)); err != nil {
		wc.Close()
		return fmt.Errorf("smtp: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return c.Quit()
}

// freezeToken is a notice's freeze link token: the customer and the
// notice's seq, with an HMAC by the host's freeze key. The journal makes
// it work once (people.Notice.FreezeUsed).
func (s *Server) freezeToken(c ledger.OwnerID, seq uint64) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(c))
	b = binary.BigEndian.AppendUint64(b, seq)
	return base64.RawURLEncoding.EncodeToString(append(b, s.freezeMAC(b)...))
}

func (s *Server) freezeMAC(b []byte) []byte {
	h := hmac.New(sha256.New, s.freezeKey)
	h.Write([]byte("kinko freeze link v1\x00"))
	h.Write(b)
	return h.Sum(nil)[:16]
}

// errFreezeToken is a freeze link that is not one of ours.
var errFreezeToken = fmt.Errorf("%w: the freeze link is not valid", errForbidden)

// parseFreezeToken checks a freeze link's token.
func (s *Server) parseFreezeToken(tok string) (ledger.OwnerID, uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 32 || !hmac.Equal(b[16:], s.freezeMAC(b[:16])) {
		return 0, 0, errFreezeToken
	}
	return ledger.OwnerID(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint64(b[8:]), nil
}

func (s *Server) freezeURL(n people.Notice) string {
	return strings.TrimSuffix(s.cfg.PublicURL, "/") + "/v1/freeze?token=" + s.freezeToken(n.Customer, n.Seq)
}

// pokeMailer tells the mailer to look for notices now.
func (s *Server) pokeMailer() {
	if s.mailer != nil {
		s.mailer.poke()
	}
}
