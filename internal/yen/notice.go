package yen

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"kinko/internal/alert"
)

// SignatureHeader carries the hex HMAC-SHA256 of a notice's body under the
// key kinko shares with the bank or the provider (as alert webhooks are
// signed).
const SignatureHeader = alert.SignatureHeader

// MaxNotice bounds a notice's body.
const MaxNotice = 1 << 20

// BankNotice is the bank's JSON notice: a movement of the trust account
// ("deposit": a transfer in, or an instruction carried out, named by
// EDI) or the results of a transfer file ("result").
type BankNotice struct {
	Type string `json:"type"`
	// TxID is "<account number>-<照会番号>", the id the statement's entry
	// has too.
	TxID string `json:"txid,omitempty"`
	// Memo is the statement's 摘要内容 (the virtual account's branch and
	// number for a transfer to one), EDI its EDI情報.
	Memo    string `json:"memo,omitempty"`
	EDI     string `json:"edi,omitempty"`
	Credit  bool   `json:"credit,omitempty"`
	Amount  uint64 `json:"amount,omitempty"`
	Sender  string `json:"sender,omitempty"`
	Date    string `json:"date,omitempty"`
	Results []struct {
		Code1  uint64 `json:"code1"`
		Result string `json:"result"`
	} `json:"results,omitempty"`
	// File names the transfer file of the results.
	File string `json:"file,omitempty"`
}

// ProviderNotice is the payment provider's JSON notification: an event of
// a payment, or a settlement of a channel.
type ProviderNotice struct {
	Type string `json:"type"` // "event" or "settlement"
	// Event fields.
	ID      string `json:"id"`
	Payment string `json:"payment,omitempty"`
	Kind    string `json:"kind,omitempty"` // paid, refunded, chargeback, expired
	Amount  uint64 `json:"amount,omitempty"`
	// Settlement fields.
	Channel  string   `json:"channel,omitempty"`
	Payments []string `json:"payments,omitempty"`
	Total    uint64   `json:"total,omitempty"`
}

// ErrSignature reports a notice whose signature does not verify.
var ErrSignature = errors.New("yen: notice signature does not verify")

// ReadSigned reads a request's body (at most MaxNotice) and checks its
// signature under key.
func ReadSigned(r *http.Request, key []byte) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxNotice+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxNotice {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrInvalid, MaxNotice)
	}
	want := alert.Sign(key, body)
	if !hmac.Equal([]byte(want), []byte(r.Header.Get(SignatureHeader))) {
		return nil, ErrSignature
	}
	return body, nil
}

// DecodeStrict decodes JSON with no unknown fields and nothing after it.
func DecodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if d.More() {
		return fmt.Errorf("%w: data after the value", ErrInvalid)
	}
	return nil
}

// Post sends body signed with key, once; a status other than 2xx is an
// error carrying it.
func Post(ctx context.Context, c *http.Client, url string, key, body []byte) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, alert.Sign(key, body))
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, MaxNotice))
	if resp.StatusCode/100 != 2 {
		return resp, out, &StatusError{Code: resp.StatusCode, Body: string(out)}
	}
	return resp, out, nil
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	Code int
	Body string
}

// Error says what was answered.
func (e *StatusError) Error() string { return fmt.Sprintf("yen: answered %d: %s", e.Code, e.Body) }

// Permanent reports an answer that a retry will not change (4xx but 408
// and 429).
func (e *StatusError) Permanent() bool {
	return e.Code/100 == 4 && e.Code != http.StatusRequestTimeout && e.Code != http.StatusTooManyRequests
}

// Deliver posts body until it is accepted, with growing pauses (from
// 50 ms to 5 s), until ctx ends or the answer is permanent (a refused
// signature, malformed body). It returns the last error, nil once
// accepted.
func Deliver(ctx context.Context, c *http.Client, url string, key, body []byte) ([]byte, error) {
	delay := 50 * time.Millisecond
	for {
		_, out, err := Post(ctx, c, url, key, body)
		if err == nil {
			return out, nil
		}
		var se *StatusError
		if errors.As(err, &se) && se.Permanent() {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}
