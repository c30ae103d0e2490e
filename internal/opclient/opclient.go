// Package opclient is an operator's client of the core's HTTP API with a
// software credential (a CLI key): it signs in with a WebAuthn assertion
// and signs every sensitive command with the same key, over the same
// request digests the console's security keys sign. `kinko` commands that
// write the journal use it (--core URL --operator NAME --key FILE), never
// the data directory.
package opclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"kinko/internal/api"
	"kinko/internal/core"
	"kinko/internal/passkey"
)

// MaxResponse bounds what is read of an answer.
const MaxResponse = 64 << 20

// Client is one operator signed in to one core.
type Client struct {
	Base     string // http://host:port
	Operator string
	Key      *passkey.SoftKey
	HTTP     *http.Client

	token  string
	rpID   string
	origin string
}

// New returns a client; Login signs it in.
func New(base, operator string, key *passkey.SoftKey) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Operator: operator, Key: key, HTTP: &http.Client{Timeout: 2 * time.Minute}}
}

// Error is an answer that was not the one expected.
type Error struct {
	Status int
	Body   string
}

func (e *Error) Error() string { return fmt.Sprintf("core answered %d: %s", e.Status, e.Body) }

// do sends a JSON request and decodes a JSON answer of status want.
func (c *Client) do(ctx context.Context, method, path string, body, out any, want ...int) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, MaxResponse))
	if err != nil {
		return res.StatusCode, nil, err
	}
	for _, w := range want {
		if res.StatusCode == w {
			if out != nil && len(b) > 0 {
				if err := json.Unmarshal(b, out); err != nil {
					return res.StatusCode, b, fmt.Errorf("opclient: %s %s: %w", method, path, err)
				}
			}
			return res.StatusCode, b, nil
		}
	}
	return res.StatusCode, b, &Error{Status: res.StatusCode, Body: strings.TrimSpace(string(b))}
}

// Login signs in: the core's challenge is the digest of the session it
// opens, signed with the key.
func (c *Client) Login(ctx context.Context) error {
	var begin struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RPID      string `json:"rpId"`
		} `json:"public_key"`
		Origin string `json:"origin"`
	}
	if _, _, err := c.do(ctx, "POST", "/v1/operators/login/begin", api.BeginRequest{Operator: c.Operator}, &begin, http.StatusOK); err != nil {
		return err
	}
	ch, err := base64.RawURLEncoding.DecodeString(begin.PublicKey.Challenge)
	if err != nil {
		return fmt.Errorf("opclient: challenge: %w", err)
	}
	c.rpID, c.origin = begin.PublicKey.RPID, begin.Origin
	a, err := c.Key.Assert(c.rpID, c.origin, ch)
	if err != nil {
		return err
	}
	var res api.LoginResponse
	if _, _, err := c.do(ctx, "POST", "/v1/operators/login/finish", api.FinishRequest{Operator: c.Operator, Credential: api.AssertionJSON(a)}, &res, http.StatusOK); err != nil {
		return err
	}
	c.token = res.Token
	return nil
}

// Token returns the session token after Login.
func (c *Client) Token() string { return c.token }

// Get reads a JSON route.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	_, _, err := c.do(ctx, "GET", path, nil, out, http.StatusOK)
	return err
}

// Command journals cmd through /v1/commands as the signed-in operator,
// signing it with the key when its kind is signed. It returns the
// command's value as JSON.
func (c *Client) Command(ctx context.Context, cmd core.Command) (json.RawMessage, error) {
	req := api.CommandRequest{Kind: cmd.Kind().String(), Payload: cmd.AppendPayload(nil)}
	if _, digest, ok := core.SignedDigest(cmd); ok {
		a, err := c.Key.Assert(c.rpID, c.origin, digest[:])
		if err != nil {
			return nil, err
		}
		req.Assertion = api.AssertionJSON(a)
	}
	var res struct {
		Value json.RawMessage `json:"value"`
	}
	if _, _, err := c.do(ctx, "POST", "/v1/commands", req, &res, http.StatusOK); err != nil {
		return nil, err
	}
	return res.Value, nil
}

// Signed posts body to a signed route: the first answer (428) says what
// to sign and the values to send again; the second post carries the
// assertion. setAssertion puts the assertion and those values into body.
//
// expires is the request's expiry as the 428 answered it (RFC 3339, to the
// nanosecond), nil when the route has none.
func (c *Client) Signed(ctx context.Context, path string, body any, setAssertion func(a json.RawMessage, id string, expires *time.Time), out any, want int) error {
	var ch api.SignatureRequired
	status, b, err := c.do(ctx, "POST", path, body, &ch, http.StatusPreconditionRequired, want)
	if err != nil {
		return err
	}
	if status == want {
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	d, err := base64.RawURLEncoding.DecodeString(ch.Challenge)
	if err != nil {
		return fmt.Errorf("opclient: challenge: %w", err)
	}
	a, err := c.Key.Assert(ch.RPID, ch.Origin, d)
	if err != nil {
		return err
	}
	setAssertion(api.AssertionJSON(a), ch.ID, ch.Expires)
	if _, _, err := c.do(ctx, "POST", path, body, out, want); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusPreconditionRequired {
			return fmt.Errorf("opclient: the core asked again for a signature: %w", err)
		}
		return err
	}
	return nil
}

// Post sends an unsigned JSON request.
func (c *Client) Post(ctx context.Context, path string, body, out any, want int) error {
	_, _, err := c.do(ctx, "POST", path, body, out, want)
	return err
}

// EnrolKey registers the client's key with a one-time enrolment code
// (no sign-in needed: the code is the authority).
func (c *Client) EnrolKey(ctx context.Context, code, label string) (api.EnrolResponse, error) {
	var res api.EnrolResponse
	_, _, err := c.do(ctx, "POST", "/v1/operators/enrol/key", api.EnrolKeyRequest{Operator: c.Operator, Code: code, PublicKey: c.Key.PublicKey(), Label: label}, &res, http.StatusCreated)
	return res, err
}
