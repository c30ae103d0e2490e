package signer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"kinko/internal/core"
	"kinko/internal/journal/tree"
	"kinko/internal/signer/view"
)

// Backend is the core as the hot signer reaches it: in process, or over
// the API with the signer's token.
type Backend interface {
	View(ctx context.Context, asset string) (view.View, error)
	// Submit journals one of the signer's commands (reserve_batch,
	// record_signed).
	Submit(ctx context.Context, cmd core.Command) error
	// Head returns the journal's tree head now, to anchor on chain. It is
	// not trusted: the co-signer anchors only a head its own mirror has.
	Head(ctx context.Context) (tree.Head, error)
}

// InProcess is the core in the same process.
type InProcess struct{ Core *core.Core }

// View reads the state.
func (b InProcess) View(_ context.Context, asset string) (view.View, error) {
	var v view.View
	b.Core.Read(func(st *core.State) { v = view.Of(st, asset) })
	return v, nil
}

// Submit journals cmd.
func (b InProcess) Submit(ctx context.Context, cmd core.Command) error {
	_, err := b.Core.Do(ctx, time.Now(), cmd)
	return err
}

// Head returns the core's signed head now.
func (b InProcess) Head(context.Context) (tree.Head, error) {
	_, h, err := b.Core.SignedHead()
	return h, err
}

// API is the core reached over its HTTP API with the signer's token.
type API struct {
	URL   string
	Token string
	HTTP  *http.Client
}

func (b API) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := b.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if res.StatusCode >= 300 {
		return fmt.Errorf("core: %s: %s", res.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// View asks the core.
func (b API) View(ctx context.Context, asset string) (view.View, error) {
	var v view.View
	err := b.do(ctx, "GET", "/v1/signer/view?asset="+asset, nil, &v)
	return v, err
}

// Head reads the core's signed head (GET /v1/journal/head, public).
func (b API) Head(ctx context.Context) (tree.Head, error) {
	var v struct {
		SignedHead string `json:"signed_head"`
	}
	if err := b.do(ctx, "GET", "/v1/journal/head", nil, &v); err != nil {
		return tree.Head{}, err
	}
	return tree.ParseHead([]byte(v.SignedHead))
}

// Submit sends the command.
func (b API) Submit(ctx context.Context, cmd core.Command) error {
	return b.do(ctx, "POST", "/v1/signer/commands", view.SignerCommand{Kind: cmd.Kind().String(), Payload: cmd.AppendPayload(nil)}, nil)
}
