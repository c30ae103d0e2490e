package wallet

import (
	"encoding/binary"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

// maxGrind bounds the nonces signLowR tries; each has a one-in-two chance
// of a low R, so reaching the bound means a broken nonce function.
const maxGrind = 256

// signLowR signs hash with key as Bitcoin Core does since 0.17: RFC6979
// nonces, the first without extra data and then with a 32-byte counter
// (little-endian in its first four bytes, the rest zero) as the extra
// entropy, until R's top bit is clear, so that R takes 32 bytes of DER
// and the signature 70 at most (71 with the sighash byte). btcec/v2's
// ecdsa.Sign takes no extra data, so the nonce comes from
// btcec.NonceRFC6979 (the same HMAC-DRBG, key || hash || extra) and the
// signature is computed here: s = k⁻¹(e + r·d), made low (BIP62). Same
// key and hash, same signature: signing stays idempotent.
func signLowR(key *btcec.PrivateKey, hash []byte) *ecdsa.Signature {
	var extra [32]byte
	privBytes := key.Key.Bytes()
	var e btcec.ModNScalar
	e.SetByteSlice(hash)
	for counter := uint32(0); counter < maxGrind; counter++ {
		var ex []byte
		if counter > 0 {
			binary.LittleEndian.PutUint32(extra[:4], counter)
			ex = extra[:]
		}
		for iter := uint32(0); ; iter++ {
			k := btcec.NonceRFC6979(privBytes[:], hash, ex, nil, iter)
			var R btcec.JacobianPoint
			btcec.ScalarBaseMultNonConst(k, &R)
			R.ToAffine()
			var r btcec.ModNScalar
			xb := R.X.Bytes()
			r.SetBytes(xb)
			if r.IsZero() {
				k.Zero()
				continue
			}
			// s = k⁻¹(e + r·d)
			kinv := new(btcec.ModNScalar).InverseValNonConst(k)
			k.Zero()
			s := new(btcec.ModNScalar).Mul2(&key.Key, &r).Add(&e).Mul(kinv)
			if s.IsZero() {
				continue
			}
			if s.IsOverHalfOrder() {
				s.Negate()
			}
			rb := r.Bytes()
			if rb[0] < 0x80 {
				return ecdsa.NewSignature(&r, s)
			}
			break
		}
	}
	// Unreachable with a working nonce function: 2^-256.
	return ecdsa.Sign(key, hash)
}
