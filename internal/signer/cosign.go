package signer

import (
	"context"

	"github.com/btcsuite/btcd/btcutil/psbt"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/journal"
)

// Local is a co-signer in the same process, fed from the core's journal:
// for tests and `kinko dev`. In service the co-signer is its own process on
// its own host, reading the journal over a read-only stream.
type Local struct {
	C    *cosigner.Cosigner
	Core *core.Core
}

// Follow feeds the co-signer the journal entries it has not read.
func (l *Local) Follow() error {
	var err error
	l.Core.Journal().Scan(l.C.Seq()+1, func(e journal.Entry) error {
		err = l.C.Ingest(e.Encode())
		return err
	})
	return err
}

// CoSign feeds the co-signer, then asks it to sign.
func (l *Local) CoSign(ctx context.Context, p *psbt.Packet) (*psbt.Packet, error) {
	if err := l.Follow(); err != nil {
		return nil, err
	}
	if _, err := l.C.Sign(p); err != nil {
		return nil, err
	}
	return p, nil
}

// CoSignSafeTx feeds the co-signer, then asks it to sign a SafeTx: the
// Ether hot signer's co-signer in the same process.
func (l *Local) CoSignSafeTx(ctx context.Context, req cosigner.SafeTxRequest) (safe.Signature, error) {
	if err := l.Follow(); err != nil {
		return safe.Signature{}, err
	}
	sig, err := l.C.SignSafeTx(ctx, req)
	if err != nil {
		return safe.Signature{}, err
	}
	return sig.Signature, nil
}
