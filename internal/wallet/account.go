package wallet

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
)

// BIP48 path elements: m/48'/coin'/account'/2' for P2WSH multisig.
const (
	purposeBIP48 = 48
	scriptP2WSH  = 2
)

// CoinType returns BIP44's coin type: 0 for mainnet, 1 for the test
// networks (testnet, signet, regtest).
func CoinType(net *chaincfg.Params) uint32 {
	if net.Name == chaincfg.MainNetParams.Name {
		return 0
	}
	return 1
}

// Fingerprint returns a master key's fingerprint: the first four bytes of
// the hash160 of its public key.
func Fingerprint(master *hdkeychain.ExtendedKey) ([4]byte, error) {
	pk, err := master.ECPubKey()
	if err != nil {
		return [4]byte{}, err
	}
	var fp [4]byte
	copy(fp[:], btcutil.Hash160(pk.SerializeCompressed())[:4])
	return fp, nil
}

// AccountPath returns the BIP48 P2WSH path of an account.
func AccountPath(net *chaincfg.Params, account uint32) []uint32 {
	h := uint32(hdkeychain.HardenedKeyStart)
	return []uint32{h + purposeBIP48, h + CoinType(net), h + account, h + scriptP2WSH}
}

// AccountKey derives the BIP48 P2WSH account key of a master private key
// and returns it as a descriptor key (xpub with origin) and the account's
// private key for signing.
func AccountKey(master *hdkeychain.ExtendedKey, net *chaincfg.Params, account uint32) (Key, *hdkeychain.ExtendedKey, error) {
	if !master.IsPrivate() {
		return Key{}, nil, fmt.Errorf("wallet: account keys come from a private master key")
	}
	fp, err := Fingerprint(master)
	if err != nil {
		return Key{}, nil, err
	}
	path := AccountPath(net, account)
	k := master
	for _, p := range path {
		if k, err = k.Derive(p); err != nil {
			return Key{}, nil, err
		}
	}
	pub, err := k.Neuter()
	if err != nil {
		return Key{}, nil, err
	}
	return Key{Fingerprint: fp, Path: path, XPub: pub}, k, nil
}
