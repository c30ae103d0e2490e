package yen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"kinko/internal/yen/zengin"
)

// File returns the transfer file (総合振込) of a batch: one payment per
// payout, paid from the trust account, its customer codes the payout's
// number and the customer's id. It is a pure function of the journaled
// batch, so apply computes its hash and the bank connector writes the same
// bytes.
func (s *State) File(b *Batch) (*zengin.TransferFile, error) {
	if s.Config == nil {
		return nil, ErrNotSetUp
	}
	from := s.Config.Trust
	from.Name = ""
	f := &zengin.TransferFile{RequesterCode: s.Config.RequesterCode, Requester: s.Config.Requester, Month: b.Month, Day: b.Day, From: from,
		Payments: make([]zengin.Payment, 0, len(b.Payouts))}
	for _, n := range b.Payouts {
		p, ok := s.Payout(n)
		if !ok {
			return nil, fmt.Errorf("%w: payout %d", ErrBatchUnknown, n)
		}
		code2 := uint64(p.Customer)
		if code2 > maxCustomerCode {
			// A customer id of more digits than 顧客コード2 holds (the
			// API draws them up to 2^52): left out; the payout's number
			// in 顧客コード1 names the payout and so its customer.
			code2 = 0
		}
		f.Payments = append(f.Payments, zengin.Payment{To: p.To, Amount: p.Amount, Code1: p.Number, Code2: code2})
	}
	return f, nil
}

// FileBytes returns the encoded transfer file of a batch and the hex
// SHA-256 of its bytes.
func (s *State) FileBytes(b *Batch, dst []byte) ([]byte, string, error) {
	f, err := s.File(b)
	if err != nil {
		return nil, "", err
	}
	out, err := zengin.AppendTransferFile(dst[:0], f)
	if err != nil {
		return nil, "", err
	}
	h := sha256.Sum256(out)
	return out, hex.EncodeToString(h[:]), nil
}

// maxCustomerCode is the largest customer id 顧客コード2 (ten digits)
// holds.
const maxCustomerCode = 9_999_999_999
