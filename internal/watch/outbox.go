package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// outboxFile is the outbox's file in the watcher's state directory.
const outboxFile = "outflows.json"

// maxOutbox bounds the outflows kept: past it the asset is halted many
// times over, and the oldest are what matters.
const maxOutbox = 10_000

// pendingOutflow is an unexplained outflow not yet journaled.
type pendingOutflow struct {
	TxID  chainhash.Hash `json:"txid"`
	Asset ledger.AssetID `json:"asset"`
	Why   string         `json:"why"`
	// Loss is what the outflow took of ours, in base units.
	Loss uint64 `json:"loss,omitempty"`
	// Spends, set when it was found while the core did not answer, are
	// the outputs of ours it spends, to look at again when it does.
	Spends []custody.Outpoint `json:"spends,omitempty"`
}

// outbox keeps the outflows found and not yet journaled, in the order
// found, in a file of the watcher's host (rewritten whole and synced at
// each change: it holds a handful), or only in memory without one.
type outbox struct {
	path  string
	items []pendingOutflow
}

func openOutbox(dir string) (*outbox, error) {
	o := &outbox{}
	if dir == "" {
		return o, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	o.path = filepath.Join(dir, outboxFile)
	b, err := os.ReadFile(o.path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &o.items); err != nil {
		return nil, fmt.Errorf("watch: %s: %w", o.path, err)
	}
	return o, nil
}

func (o *outbox) len() int { return len(o.items) }

func (o *outbox) add(p pendingOutflow) error {
	if len(o.items) >= maxOutbox {
		return fmt.Errorf("watch: %d outflows waiting for the core; %s not kept", len(o.items), p.TxID)
	}
	o.items = append(o.items, p)
	return o.save()
}

func (o *outbox) pop() error {
	o.items = o.items[1:]
	return o.save()
}

// save writes the file through a synced temporary file and a rename.
func (o *outbox) save() error {
	if o.path == "" {
		return nil
	}
	b, err := json.Marshal(o.items)
	if err != nil {
		return err
	}
	tmp := o.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, o.path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(o.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
