// Package trace follows stolen coins through the chain: from the
// unauthorized transactions, every output they paid and every transaction
// that spent one, hop by hop, up to a bound. The graph is exported as JSON
// and as an SVG picture, and its addresses go on the AML deny list, so that
// deposits from them are held for review and withdrawals to them refused.
package trace

import (
	"context"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain"
)

// Txs gives whole transactions by id, from the node's transaction index:
// a trace lists every output a traced transaction pays, not only those a
// chain.Watch holds. That is Bitcoin's own (an account chain has no
// outputs to follow), so it is not part of chain.Backend; *btc.Node is
// one.
type Txs interface {
	Tx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error)
}

// Limits of one trace.
const (
	MaxHops = 20
	MaxTxs  = 10_000
)

// Graph is a trace.
type Graph struct {
	Roots     []string `json:"roots"`
	Hops      int      `json:"hops"`
	From      int32    `json:"from_height"`
	To        int32    `json:"to_height"`
	Txs       []Tx     `json:"txs"`
	Edges     []Edge   `json:"edges"`
	Addresses []Addr   `json:"addresses"`
	// Truncated says the trace stopped at MaxTxs.
	Truncated bool `json:"truncated,omitempty"`
}

// Tx is a transaction in the trace: hop 0 are the roots.
type Tx struct {
	TxID   string `json:"txid"`
	Hop    int    `json:"hop"`
	Height int32  `json:"height"` // 0: not found in the scanned blocks (a root)
}

// Edge is an output of one traced transaction spent by another.
type Edge struct {
	From    string `json:"from"` // txid
	Vout    uint32 `json:"vout"`
	To      string `json:"to"` // the spending txid
	Value   int64  `json:"value"`
	Address string `json:"address,omitempty"`
}

// Addr is an address the stolen coins were paid to.
type Addr struct {
	Address string `json:"address"`
	Hop     int    `json:"hop"`   // the hop of the transaction that paid it
	Value   int64  `json:"value"` // paid to it along the trace
}

// Options bound a trace.
type Options struct {
	Hops int
	// FromHeight is the first block scanned for spends (the theft's block,
	// or a little before).
	FromHeight int32
	Net        *chaincfg.Params
	// Ours tells our own scripts apart: they are traced through but never
	// listed for the deny list.
	Ours func(script []byte) bool
}

type followed struct {
	hop     int
	value   int64
	address string
}

// Trace follows the outputs of roots through b, a Bitcoin backend of the
// chain interface: the outputs traced are watched, and each block from
// FromHeight to the tip tells the transactions spending them
// (Block.Spends), read whole from txs and followed in turn. A block is
// read again while it holds newly traced transactions, whose outputs a
// later transaction of the same block may spend.
func Trace(ctx context.Context, b chain.Backend, txs Txs, roots []chainhash.Hash, o Options) (*Graph, error) {
	if len(roots) == 0 || o.Hops < 1 || o.Hops > MaxHops {
		return nil, fmt.Errorf("trace: 1 to %d hops from at least one transaction", MaxHops)
	}
	if o.Net == nil {
		return nil, fmt.Errorf("trace: a network")
	}
	if f := b.Family(); f != chain.Bitcoin {
		return nil, fmt.Errorf("trace: a %s backend; tracing follows bitcoin outputs", f)
	}
	ref, err := b.Tip(ctx)
	if err != nil {
		return nil, err
	}
	if ref.Height > math.MaxInt32 {
		return nil, fmt.Errorf("trace: tip height %d out of range", ref.Height)
	}
	tip := int32(ref.Height)
	if o.FromHeight < 0 || o.FromHeight > tip {
		return nil, fmt.Errorf("trace: from height %d beyond the tip %d", o.FromHeight, tip)
	}
	g := &Graph{Hops: o.Hops, From: o.FromHeight, To: tip}
	outs := map[wire.OutPoint]followed{}
	addrs := map[string]*Addr{}
	seen := map[chainhash.Hash]bool{}
	w := chain.NewWatch()
	// addTx adds tx to the graph and watches its outputs; it reports
	// whether it watched any.
	addTx := func(tx *wire.MsgTx, hop int, height int32) (bool, error) {
		id := tx.TxHash()
		seen[id] = true
		g.Txs = append(g.Txs, Tx{TxID: id.String(), Hop: hop, Height: height})
		if hop >= o.Hops {
			return false, nil // its outputs are the last hop's: listed, not followed
		}
		for i, out := range tx.TxOut {
			a := ""
			if _, as, _, _ := txscript.ExtractPkScriptAddrs(out.PkScript, o.Net); len(as) == 1 {
				a = as[0].EncodeAddress()
			}
			op := wire.OutPoint{Hash: id, Index: uint32(i)}
			if err := w.AddOutput(chain.Outpoint{Tx: chain.NewID(chain.Bitcoin, id), Index: uint32(i)}); err != nil {
				return false, fmt.Errorf("trace: %w", err)
			}
			outs[op] = followed{hop: hop + 1, value: out.Value, address: a}
			if a != "" && (o.Ours == nil || !o.Ours(out.PkScript)) {
				if addrs[a] == nil {
					addrs[a] = &Addr{Address: a, Hop: hop + 1}
				}
				addrs[a].Value += out.Value
			}
		}
		return len(tx.TxOut) > 0, nil
	}
	fetch := func(txid chainhash.Hash) (*wire.MsgTx, error) {
		tx, err := txs.Tx(ctx, txid)
		if err != nil {
			return nil, err
		}
		if got := tx.TxHash(); got != txid {
			return nil, fmt.Errorf("asked for transaction %s, given %s", txid, got)
		}
		return tx, nil
	}
	for _, r := range roots {
		tx, err := fetch(r)
		if err != nil {
			return nil, fmt.Errorf("trace: root %s: %w", r, err)
		}
		g.Roots = append(g.Roots, r.String())
		if _, err := addTx(tx, 0, 0); err != nil {
			return nil, err
		}
	}
	for h := o.FromHeight; h <= tip && !g.Truncated; h++ {
		hash, err := b.HashAt(ctx, uint64(h))
		if err != nil {
			return nil, err
		}
		for pass := 0; !g.Truncated; pass++ {
			blk, err := b.Block(ctx, hash, w)
			if err != nil {
				return nil, err
			}
			if pass == 0 {
				for _, id := range blk.TxIDs {
					if seen[chainhash.Hash(id.Bytes())] {
						for i := range g.Txs {
							if g.Txs[i].TxID == id.String() && g.Txs[i].Height == 0 {
								g.Txs[i].Height = h
							}
						}
					}
				}
			}
			again := false
			for _, sp := range blk.Spends {
				id := chainhash.Hash(sp.Tx.Bytes())
				if seen[id] {
					continue
				}
				tx, err := fetch(id)
				if err != nil {
					return nil, fmt.Errorf("trace: transaction %s of block %d: %w", id, h, err)
				}
				hop := 0
				for _, in := range tx.TxIn {
					f, ok := outs[in.PreviousOutPoint]
					if !ok {
						continue
					}
					g.Edges = append(g.Edges, Edge{From: in.PreviousOutPoint.Hash.String(), Vout: in.PreviousOutPoint.Index, To: id.String(), Value: f.value, Address: f.address})
					hop = max(hop, f.hop)
				}
				if hop == 0 {
					return nil, fmt.Errorf("trace: the backend told transaction %s as spending %s:%d, which it does not", id, sp.Prev.Tx, sp.Prev.Index)
				}
				if len(g.Txs) >= MaxTxs {
					g.Truncated = true
					break
				}
				watched, err := addTx(tx, hop, h)
				if err != nil {
					return nil, err
				}
				again = again || watched
			}
			if !again {
				break
			}
		}
	}
	for _, a := range addrs {
		g.Addresses = append(g.Addresses, *a)
	}
	sort.Slice(g.Addresses, func(i, j int) bool {
		if g.Addresses[i].Hop != g.Addresses[j].Hop {
			return g.Addresses[i].Hop < g.Addresses[j].Hop
		}
		return g.Addresses[i].Address < g.Addresses[j].Address
	})
	return g, nil
}

// AddressList returns the graph's addresses, for the deny list.
func (g *Graph) AddressList() []string {
	out := make([]string, len(g.Addresses))
	for i, a := range g.Addresses {
		out[i] = a.Address
	}
	return out
}

// WriteSVG draws the graph: one column a hop, one box a transaction,
// arrows for the outputs spent along the trace, with their values.
func (g *Graph) WriteSVG(w io.Writer) error {
	const colW, rowH, boxW, boxH, pad = 230, 46, 190, 30, 20
	cols := map[int][]Tx{}
	maxRows := 1
	for _, t := range g.Txs {
		cols[t.Hop] = append(cols[t.Hop], t)
		maxRows = max(maxRows, len(cols[t.Hop]))
	}
	pos := map[string][2]int{}
	for hop, ts := range cols {
		for i, t := range ts {
			pos[t.TxID] = [2]int{pad + hop*colW, pad + 20 + i*rowH}
		}
	}
	width, height := pad*2+(g.Hops+1)*colW, pad*2+20+maxRows*rowH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="monospace" font-size="11">`, width, height, width, height)
	b.WriteString(`<defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>`)
	for hop := 0; hop <= g.Hops; hop++ {
		label := fmt.Sprintf("hop %d", hop)
		if hop == 0 {
			label = "unauthorized"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif">%s</text>`, pad+hop*colW, pad+8, label)
	}
	for _, e := range g.Edges {
		f, ok1 := pos[e.From]
		t, ok2 := pos[e.To]
		if !ok1 || !ok2 {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#555" marker-end="url(#a)"/>`, f[0]+boxW, f[1]+boxH/2, t[0], t[1]+boxH/2)
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%d</text>`, (f[0]+boxW+t[0])/2-20, (f[1]+t[1])/2+boxH/2-4, e.Value)
	}
	for _, t := range g.Txs {
		p := pos[t.TxID]
		fill := "#eef"
		if t.Hop == 0 {
			fill = "#fdd"
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="#333"/><text x="%d" y="%d">%s…</text><text x="%d" y="%d" fill="#666">block %d</text>`,
			p[0], p[1], boxW, boxH, fill, p[0]+6, p[1]+13, html.EscapeString(t.TxID[:16]), p[0]+6, p[1]+26, t.Height)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
