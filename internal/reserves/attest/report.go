package attest

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/reserves/bip322"
	"kinko/internal/reserves/sumtree"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

// MaxExchangeName bounds the exchange's name in a message.
const MaxExchangeName = 64

// ValidExchange reports whether name may stand in a message: 1 to 64
// printable ASCII characters, so that what the offline machine shows is
// what is signed.
func ValidExchange(name string) bool {
	if name == "" || len(name) > MaxExchangeName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			return false
		}
	}
	return true
}

// Message is the text a cold wallet signs (BIP-322) to prove, at a block,
// that its keys are held, naming the exchange, the asset, the block and
// the liabilities root it answers:
//
//	kinko proof of reserves
//	exchange: <name>
//	asset: <code>
//	block: <height> <hash>
//	liabilities root: <hex>
//	liabilities: <n> customers owed <total> <code> (<base units> base units) at journal entry <seq>
//	wallet: <id> <kind>, address <address>
func Message(exchange string, a ledger.Asset, height int32, block chainhash.Hash, root sumtree.Root, w custody.Wallet, address string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kinko proof of reserves\n")
	fmt.Fprintf(&b, "exchange: %s\n", exchange)
	fmt.Fprintf(&b, "asset: %s\n", a.Code)
	fmt.Fprintf(&b, "block: %d %s\n", height, block)
	fmt.Fprintf(&b, "liabilities root: %s\n", root.Hash)
	fmt.Fprintf(&b, "liabilities: %d customers owed %s %s (%s base units) at journal entry %d\n", root.Size, root.Total.FormatDecimal(a.Decimals), a.Code, root.Total, root.Seq)
	fmt.Fprintf(&b, "wallet: %d %s, address %s", w.ID, w.Kind, address)
	return b.String()
}

// ProofAddress returns the address a wallet signs with, and its script:
// its first receive address. Its keys are children of the wallet's
// account keys by unhardened derivation, so signing with them proves the
// account keys are held.
func ProofAddress(w custody.Wallet, net *chaincfg.Params) (*wallet.Descriptor, string, []byte, error) {
	d, err := wallet.Parse(w.Descriptor, net)
	if err != nil {
		return nil, "", nil, fmt.Errorf("attest: wallet %d: %w", w.ID, err)
	}
	addr, _, err := d.Address(0, 0)
	if err != nil {
		return nil, "", nil, err
	}
	pk, err := d.PkScript(0, 0)
	if err != nil {
		return nil, "", nil, err
	}
	return d, addr.EncodeAddress(), pk, nil
}

// isCold reports the wallets whose control the report proves by
// signature: every key offline.
func isCold(k custody.WalletKind) bool { return k == custody.ColdCustomer || k == custody.ColdHouse }

// MessageRequest is one cold wallet's message to sign, and its to_sign
// as a PSBT for the offline machines.
type MessageRequest struct {
	Asset   string
	Wallet  custody.Wallet
	Address string
	Message string
	PSBT    *psbt.Packet
}

// SafeAsset reports whether asset is held in Safe wallets (Ethereum): the
// report reads no Ethereum node and asks for no BIP-322 proof of them.
func SafeAsset(head *core.State, asset ledger.AssetID) bool {
	for _, w := range head.Custody.Wallets() {
		if w.Asset == asset && w.Safe() {
			return true
		}
	}
	return false
}

// MessageRequests returns the message requests of every cold wallet of
// each chain asset whose liabilities root of entry seq is published
// (head is the state at the journal's head), at block height of hash.
func MessageRequests(head *core.State, seq uint64, exchange string, net *chaincfg.Params, height int32, block chainhash.Hash) ([]MessageRequest, error) {
	if !ValidExchange(exchange) {
		return nil, fmt.Errorf("attest: exchange name %q: 1 to %d printable characters", exchange, MaxExchangeName)
	}
	var out []MessageRequest
	for _, a := range head.Ledger.Assets() {
		var cold []custody.Wallet
		for _, w := range head.Custody.Wallets() {
			if w.Asset == a.ID && isCold(w.Kind) && !w.Safe() {
				cold = append(cold, w) // a Safe wallet proves nothing by BIP-322
			}
		}
		if len(cold) == 0 {
			continue
		}
		pub, ok := head.PublishedLiabilitiesAt(a.Code, seq)
		if !ok {
			return nil, fmt.Errorf("%w: %s at entry %d (kinko reserves publish --at %d)", ErrNotPublished, a.Code, seq, seq)
		}
		for _, w := range cold {
			d, addr, pk, err := ProofAddress(w, net)
			if err != nil {
				return nil, err
			}
			msg := Message(exchange, a, height, block, pub.Root, w, addr)
			p, err := bip322.NewPSBT(pk, []byte(msg))
			if err != nil {
				return nil, err
			}
			if err := wallet.AddInput(p, 0, d, 0, 0, 0); err != nil {
				return nil, err
			}
			out = append(out, MessageRequest{Asset: a.Code, Wallet: w, Address: addr, Message: msg, PSBT: p})
		}
	}
	return out, nil
}

// Signed is a signed to_sign from a file: a combined PSBT assembled, or
// a full-format signature decoded.
type Signed struct {
	Source string
	Tx     *wire.MsgTx
}

// Input is what a report is built from.
type Input struct {
	Exchange string
	// Trees is the state at the journal entry the liabilities are of;
	// Head the state at the journal's head (the publications, the
	// wallets).
	Trees, Head *core.State
	Key         []byte
	Net         *chaincfg.Params
	// Chain is, by asset code, what the node says the asset's wallets
	// held at the report's block; an asset without it is reported from
	// the ledger alone.
	Chain     map[string]*watch.Holdings
	Signed    []Signed
	Generated time.Time
}

// Report is the attestation: per asset, the liabilities against the
// holdings.
type Report struct {
	Exchange  string        `json:"exchange"`
	Generated string        `json:"generated"`
	Seq       uint64        `json:"seq"`
	Time      string        `json:"time"`
	Network   string        `json:"network"`
	Assets    []AssetReport `json:"assets"`
	// Unmatched lists signature files that are no cold wallet's message.
	Unmatched []Unmatched `json:"unmatched,omitempty"`
	// OK: every asset covered, its root published as rebuilt, every cold
	// wallet's signature verified.
	OK bool `json:"ok"`
}

// AssetReport is one asset's figures, in base units.
type AssetReport struct {
	Asset       string            `json:"asset"`
	Decimals    uint8             `json:"decimals"`
	Class       string            `json:"class"`
	Liabilities LiabilitiesReport `json:"liabilities"`
	// Block is the block the holdings are at (chain assets with chain
	// data).
	Block *BlockRef `json:"block,omitempty"`
	// Holdings is what the customer wallets hold: on chain at Block for
	// chain assets with chain data, by the ledger otherwise (HoldingsFrom
	// says which).
	Holdings     ledger.Amount  `json:"holdings"`
	HoldingsFrom string         `json:"holdings_from"`
	House        *ledger.Amount `json:"house_on_chain,omitempty"`
	Wallets      []WalletReport `json:"wallets"`
	// CoverageBps is holdings / liabilities in basis points, rounded
	// down; absent when nothing is owed.
	CoverageBps *uint64 `json:"coverage_bps,omitempty"`
	Coverage    string  `json:"coverage"`
	Covered     bool    `json:"covered"`
	Signed      bool    `json:"cold_wallets_signed"`
	OK          bool    `json:"ok"`
	Note        string  `json:"note,omitempty"`
}

// LiabilitiesReport is the asset's tree as rebuilt, and its publication.
type LiabilitiesReport struct {
	Root      sumtree.Root `json:"root"`
	Published *Published   `json:"published,omitempty"`
}

// Published says where the journal published the tree's root, and
// whether it is the rebuilt one.
type Published struct {
	Seq     uint64       `json:"published_seq"`
	Root    sumtree.Hash `json:"root"`
	Matches bool         `json:"matches"`
}

// BlockRef names a block.
type BlockRef struct {
	Height int32  `json:"height"`
	Hash   string `json:"hash"`
}

// WalletReport is one wallet.
type WalletReport struct {
	ID         uint32         `json:"id"`
	Kind       string         `json:"kind"`
	Descriptor string         `json:"descriptor"`
	Address    string         `json:"address"`
	Ledger     ledger.Amount  `json:"ledger"`
	OnChain    *ledger.Amount `json:"on_chain,omitempty"`
	UTXOs      int            `json:"utxos,omitempty"`
	Signature  *SigReport     `json:"signature,omitempty"`
}

// SigReport is a cold wallet's BIP-322 proof of control.
type SigReport struct {
	Message   string `json:"message"`
	Signature string `json:"signature,omitempty"` // full format, base64
	Source    string `json:"source,omitempty"`
	Verifies  bool   `json:"verifies"`
	Reason    string `json:"reason,omitempty"`
}

// Unmatched is a signature file that answers no cold wallet's message.
type Unmatched struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
}

// coverage returns holdings/liabilities in basis points and as a percent
// with two decimals, by integer arithmetic.
func coverage(hold, liab ledger.Amount) (*uint64, string) {
	if liab.IsZero() {
		return nil, "nothing owed"
	}
	q := new(big.Int).Mul(hold.Big(), big.NewInt(10000))
	q.Quo(q, liab.Big())
	if !q.IsUint64() {
		return nil, "more than 10^15 %"
	}
	v := q.Uint64()
	return &v, fmt.Sprintf("%d.%02d%%", v/100, v%100)
}

func sum(a, b ledger.Amount) ledger.Amount {
	s, over := a.Add(b)
	if over {
		panic("attest: a sum of ledger amounts overflows 128 bits")
	}
	return s
}

// Build builds the report: each asset's tree rebuilt from in.Trees,
// checked against its publication; the wallets and, with chain data,
// their holdings at the block and the cold wallets' signatures of the
// message naming that block and the root.
func Build(in Input) (*Report, error) {
	if !ValidExchange(in.Exchange) {
		return nil, fmt.Errorf("attest: exchange name %q: 1 to %d printable characters", in.Exchange, MaxExchangeName)
	}
	seq := in.Trees.Seq()
	rep := &Report{Exchange: in.Exchange, Generated: in.Generated.UTC().Format(time.RFC3339), Seq: seq,
		Time: time.Unix(0, in.Trees.Time()).UTC().Format(time.RFC3339Nano), Network: in.Net.Name, OK: true}
	ledgerRows, err := reserves.Compute(in.Trees.Ledger, in.Trees.Custody, reserves.DefaultPolicy, nil, seq, in.Trees.Time())
	if err != nil {
		return nil, err
	}
	used := make([]bool, len(in.Signed))
	for i, a := range in.Trees.Ledger.Assets() {
		lb, err := reserves.BuildLiabilities(in.Trees.Ledger, a, in.Key, seq, in.Trees.Time())
		if err != nil {
			return nil, err
		}
		root := lb.Root()
		ar := AssetReport{Asset: a.Code, Decimals: a.Decimals, Class: "chain", Liabilities: LiabilitiesReport{Root: root}, Wallets: []WalletReport{}}
		if a.Class == ledger.ClassFiat {
			ar.Class = "fiat"
		}
		if pub, ok := in.Head.PublishedLiabilitiesAt(a.Code, seq); ok {
			ar.Liabilities.Published = &Published{Seq: pub.PublishedSeq, Root: pub.Hash, Matches: pub.Root == root}
		}
		chain := in.Chain[a.Code]
		safes := SafeAsset(in.Head, a.ID)
		if safes {
			chain = nil // no Bitcoin holdings or proofs for Safe wallets
		}
		if chain != nil {
			ar.Block = &BlockRef{Height: chain.Height, Hash: chain.Hash.String()}
		}
		ar.Signed = true
		var onChainCustomer, onChainHouse ledger.Amount
		for _, w := range in.Head.Custody.Wallets() {
			if w.Asset != a.ID {
				continue
			}
			acct, _ := in.Trees.Ledger.Account(w.Account())
			if safes {
				ar.Wallets = append(ar.Wallets, WalletReport{ID: w.ID, Kind: w.Kind.String(), Descriptor: w.Descriptor, Ledger: acct.Balance()})
				continue
			}
			_, addr, pk, err := ProofAddress(w, in.Net)
			if err != nil {
				return nil, err
			}
			wr := WalletReport{ID: w.ID, Kind: w.Kind.String(), Descriptor: w.Descriptor, Address: addr, Ledger: acct.Balance()}
			if chain != nil {
				v := ledger.AmountOf(uint64(max(chain.Wallets[w.ID], 0)))
				wr.OnChain, wr.UTXOs = &v, chain.UTXOs[w.ID]
				if w.Kind.Customer() {
					onChainCustomer = sum(onChainCustomer, v)
				} else {
					onChainHouse = sum(onChainHouse, v)
				}
				if isCold(w.Kind) {
					msg := Message(in.Exchange, a, chain.Height, chain.Hash, root, w, addr)
					sr := &SigReport{Message: msg, Reason: "no signature given"}
					want := bip322.ToSpend(pk, []byte(msg)).TxHash()
					for j, s := range in.Signed {
						if used[j] || len(s.Tx.TxIn) == 0 || s.Tx.TxIn[0].PreviousOutPoint.Hash != want {
							continue
						}
						used[j] = true
						sr.Source = s.Source
						sr.Signature, _ = bip322.EncodeFull(s.Tx)
						if err := bip322.Verify(pk, []byte(msg), s.Tx); err != nil {
							sr.Reason = err.Error()
						} else {
							sr.Verifies, sr.Reason = true, ""
						}
						break
					}
					wr.Signature = sr
					ar.Signed = ar.Signed && sr.Verifies
				}
			}
			ar.Wallets = append(ar.Wallets, wr)
		}
		if chain == nil && a.Class == ledger.ClassChain {
			ar.Signed = false // without a block there is no message to sign
		}
		row := ledgerRows.Rows[i]
		switch {
		case chain != nil:
			ar.Holdings, ar.HoldingsFrom = onChainCustomer, "chain"
			ar.House = &onChainHouse
		default:
			ar.Holdings, ar.HoldingsFrom = row.CustomerWallets, "ledger"
			switch {
			case a.Class == ledger.ClassFiat:
				ar.Note = "held in the customers' trust bank account: the ledger's figure, checked against the bank's statements, not on a chain"
			case safes:
				ar.Note = "held in Safe multisig wallets on Ethereum: the ledger's wallet accounts; their Safes and deposit addresses are reconciled with them at every block by kinko watch --eth-node, but this report reads no Ethereum node and has no owners' proof of control, so the asset is not attested"
			default:
				ar.Note = "no chain data: the ledger's wallet accounts"
			}
		}
		ar.CoverageBps, ar.Coverage = coverage(ar.Holdings, root.Total)
		ar.Covered = ar.Holdings.Cmp(root.Total) >= 0
		ar.OK = ar.Covered && ar.Signed && ar.Liabilities.Published != nil && ar.Liabilities.Published.Matches
		if !ar.OK {
			rep.OK = false
		}
		rep.Assets = append(rep.Assets, ar)
	}
	for j, s := range in.Signed {
		if !used[j] {
			rep.Unmatched = append(rep.Unmatched, Unmatched{Source: s.Source, Reason: "not the to_sign of any cold wallet's message at this block and root"})
			rep.OK = false
		}
	}
	return rep, nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
