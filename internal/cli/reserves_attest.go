package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/spf13/cobra"

	"kinko/internal/chain"
	"kinko/internal/core"
	"kinko/internal/reserves"
	"kinko/internal/reserves/attest"
	"kinko/internal/reserves/bip322"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

// porStates returns the state at the journal's head and the state at the
// entry the liabilities are of: --at (a sequence number or an RFC 3339
// time), by default the entry of the newest published root.
func porStates(ctx context.Context, dir, at string) (head, trees *core.State, err error) {
	j, err := openJournal(dir)
	if err != nil {
		return nil, nil, err
	}
	defer j.Close()
	h, _, _ := j.Head()
	if head, err = core.StateAt(ctx, dir, j, h); err != nil {
		return nil, nil, err
	}
	var seq uint64
	switch {
	case at == "" && len(head.Liabilities) == 0:
		return nil, nil, fmt.Errorf("%w (kinko reserves publish)", attest.ErrNotPublished)
	case at == "":
		seq = head.Liabilities[len(head.Liabilities)-1].Seq
	default:
		var t time.Time
		var isTime bool
		if seq, t, isTime, err = parseAt(at); err != nil {
			return nil, nil, err
		}
		if isTime {
			st, err := core.StateAtTime(ctx, dir, j, t, time.Now())
			if err != nil {
				return nil, nil, err
			}
			return head, st, nil
		}
	}
	trees, err = core.StateAt(ctx, dir, j, seq)
	return head, trees, err
}

// stateCore lends a state to what reads a core (watch.Books): Read only.
type stateCore struct{ st *core.State }

// Read calls fn with the state.
func (s stateCore) Read(fn func(*core.State)) { fn(s.st) }

// Submit refuses: the state is the journal's, read from disk.
func (s stateCore) Submit(context.Context, time.Time, core.Command) (core.Outcome, error) {
	return core.Outcome{}, errors.New("cli: a state read from the journal takes no commands")
}

// blockAt returns the block of the best chain at height, or the tip if
// height < 0.
func blockAt(ctx context.Context, b chain.Backend, height int32) (chain.BlockRef, error) {
	if height < 0 {
		return b.Tip(ctx)
	}
	h, err := b.HashAt(ctx, uint64(height))
	return chain.BlockRef{Height: uint64(height), Hash: h}, err
}

// btcBlock is a Bitcoin block's height and hash in the node's types.
func btcBlock(ref chain.BlockRef) (int32, chainhash.Hash, error) {
	if ref.Height > math.MaxInt32 {
		return 0, chainhash.Hash{}, fmt.Errorf("block height %d out of range", ref.Height)
	}
	return int32(ref.Height), chainhash.Hash(ref.Hash.Bytes()), nil
}

func newReservesMessageCmd() *cobra.Command {
	var dir, at, exchange, outDir string
	var height int32
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "message",
		Short: "write, per cold wallet, the BIP-322 message naming the exchange, asset, block and published liabilities root, as a request for kinko cold sign-message",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			head, trees, err := porStates(cmd.Context(), dir, at)
			if err != nil {
				return err
			}
			b, n, net, err := nf.backend(0)
			if err != nil {
				return err
			}
			defer n.Close()
			ref, err := blockAt(cmd.Context(), b, height)
			if err != nil {
				return err
			}
			h, hash, err := btcBlock(ref)
			if err != nil {
				return err
			}
			reqs, err := attest.MessageRequests(head, trees.Seq(), exchange, net, h, hash)
			if err != nil {
				return err
			}
			if len(reqs) == 0 {
				return errors.New("no cold wallet is registered: nothing to sign")
			}
			if err := os.MkdirAll(outDir, 0o700); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, r := range reqs {
				b64, err := wallet.Encode(r.PSBT)
				if err != nil {
					return err
				}
				req := Request{ID: fmt.Sprintf("por-%s-%d-%d-wallet%d", r.Asset, trees.Seq(), h, r.Wallet.ID), Purpose: "proof of reserves (BIP-322 message)",
					TxID: r.PSBT.UnsignedTx.TxHash().String(), PSBT: b64, Message: r.Message,
					Wallets: []wallet.Named{{ID: r.Wallet.ID, Kind: r.Wallet.Kind.String(), Descriptor: r.Wallet.Descriptor}}}
				b, _ := json.MarshalIndent(req, "", "  ")
				f := filepath.Join(outDir, req.ID+".json")
				if err := os.WriteFile(f, append(b, '\n'), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(w, "%s wallet %d (%s), address %s: request written to %s\n", r.Asset, r.Wallet.ID, r.Wallet.Kind, r.Address, f)
			}
			fmt.Fprintf(w, "block %d %s, liabilities of journal entry %d: sign each with kinko cold sign-message on the wallet's offline machines, combine, and pass the results to kinko reserves attest --height %d\n", h, hash, trees.Seq(), h)
			return nil
		},
	}
	dataFlag(cmd, &dir)
	cmd.Flags().StringVar(&at, "at", "", "the journal entry of the published liabilities (default: the newest published)")
	cmd.Flags().Int32Var(&height, "height", -1, "the block the message names (default: the node's tip)")
	cmd.Flags().StringVar(&exchange, "exchange", "kinko", "the exchange's name in the message")
	cmd.Flags().StringVar(&outDir, "out", "", "directory for the request files")
	nf.add(cmd)
	cmd.MarkFlagRequired("out")
	return cmd
}

// maxSignatureFile bounds a signature file (a PSBT or a full signature).
const maxSignatureFile = 4 << 20

// readSigned reads a signature file: a signed (combined) message PSBT,
// binary or base64, assembled; or a BIP-322 full signature in base64.
func readSigned(path string) (attest.Signed, error) {
	f, err := os.Open(path)
	if err != nil {
		return attest.Signed{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSignatureFile+1))
	if err != nil {
		return attest.Signed{}, err
	}
	if len(b) > maxSignatureFile {
		return attest.Signed{}, fmt.Errorf("%s is larger than %d bytes", path, maxSignatureFile)
	}
	t := bytes.TrimSpace(b)
	if bytes.HasPrefix(b, []byte("psbt\xff")) || bytes.HasPrefix(t, []byte("cHNidP")) {
		p, err := wallet.Read(bytes.NewReader(b))
		if err != nil {
			return attest.Signed{}, fmt.Errorf("%s: %w", path, err)
		}
		tx, err := bip322.Assemble(p)
		if err != nil {
			return attest.Signed{}, fmt.Errorf("%s: %w", path, err)
		}
		return attest.Signed{Source: filepath.Base(path), Tx: tx}, nil
	}
	tx, err := bip322.DecodeFull(string(t))
	if err != nil {
		return attest.Signed{}, fmt.Errorf("%s is neither a signed message PSBT nor a BIP-322 full signature: %w", path, err)
	}
	return attest.Signed{Source: filepath.Base(path), Tx: tx}, nil
}

// chainHoldings reads, for every asset with wallets, what each wallet
// holds at the block at through the chain interface: the addresses of the
// watcher's owned book (derived from the descriptors in head), their
// holdings read by the backend (for Bitcoin one scan of the blocks from
// its birth height for all of them).
func chainHoldings(ctx context.Context, b chain.Backend, net *chaincfg.Params, head *core.State, at chain.BlockRef) (map[string]*watch.Holdings, error) {
	out := map[string]*watch.Holdings{}
	for _, a := range head.Ledger.Assets() {
		has := false
		for _, w := range head.Custody.Wallets() {
			has = has || w.Asset == a.ID
		}
		if !has || attest.SafeAsset(head, a.ID) {
			continue // an Ether asset's Safes are not read from a Bitcoin node
		}
		addrs, err := watch.OwnedAddresses(stateCore{head}, a.ID, net)
		if err != nil {
			return nil, err
		}
		h, err := attest.BitcoinHoldings(ctx, b, addrs, at)
		if err != nil {
			return nil, err
		}
		out[a.Code] = h
	}
	return out, nil
}

func newReservesAttestCmd() *cobra.Command {
	var dir, at, exchange, outDir string
	var height, from int32
	var sigs []string
	var noChain bool
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "attest --data D [--at SEQ|RFC3339] [--rpc ...] [--signature FILE]... --out DIR",
		Short: "write the attestation report (JSON and HTML): per asset, liabilities and their root, the wallets' holdings on chain at a block, the cold wallets' BIP-322 proofs, the coverage",
		Long: "Rebuilds every asset's liabilities tree at the entry (--at; default the newest published) and checks it\n" +
			"against the journal's publication; reads through the chain interface what every registered wallet holds at\n" +
			"--height (default the tip): its addresses' outputs from --from-height on, less those spent; verifies each --signature\n" +
			"(a signed and combined message PSBT from kinko cold sign-message, or a BIP-322 full signature) against\n" +
			"the message the report recomputes for that block and root. Writes attestation.json and attestation.html\n" +
			"to --out; exits 3 if not every asset is covered, published as rebuilt, and signed by its cold wallets.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			head, trees, err := porStates(ctx, dir, at)
			if err != nil {
				return err
			}
			key, err := reserves.LoadKey(dir)
			if err != nil {
				return err
			}
			net, err := netByName(nf.net)
			if err != nil {
				return err
			}
			var signed []attest.Signed
			for _, f := range sigs {
				s, err := readSigned(f)
				if err != nil {
					return err
				}
				signed = append(signed, s)
			}
			var onChain map[string]*watch.Holdings
			if !noChain {
				if from < 0 {
					return fmt.Errorf("--from-height %d: a height is 0 or more", from)
				}
				b, n, _, err := nf.backend(uint64(from))
				if err != nil {
					return err
				}
				defer n.Close()
				ref, err := blockAt(ctx, b, height)
				if err != nil {
					return err
				}
				if ref.Height < uint64(from) {
					return fmt.Errorf("holdings at block %d, before --from-height %d", ref.Height, from)
				}
				if onChain, err = chainHoldings(ctx, b, net, head, ref); err != nil {
					return err
				}
			}
			rep, err := attest.Build(attest.Input{Exchange: exchange, Trees: trees, Head: head, Key: key, Net: net, Chain: onChain, Signed: signed, Generated: time.Now()})
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return err
			}
			var js, page bytes.Buffer
			if err := rep.WriteJSON(&js); err != nil {
				return err
			}
			if err := rep.WriteHTML(&page); err != nil {
				return err
			}
			for name, b := range map[string][]byte{"attestation.json": js.Bytes(), "attestation.html": page.Bytes()} {
				if err := os.WriteFile(filepath.Join(outDir, name), b, 0o644); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "liabilities of journal entry %d (%s)\n", rep.Seq, rep.Time)
			for _, a := range rep.Assets {
				where := "by the ledger"
				if a.Block != nil {
					where = fmt.Sprintf("on chain at block %d", a.Block.Height)
				}
				pub := "NOT published"
				if p := a.Liabilities.Published; p != nil && p.Matches {
					pub = fmt.Sprintf("published at entry %d", p.Seq)
				} else if p != nil {
					pub = fmt.Sprintf("published at entry %d as another root: NOT the journal's tree", p.Seq)
				}
				fmt.Fprintf(w, "%s: owed %s, held %s %s, coverage %s; root %s %s\n", a.Asset, a.Liabilities.Root.Total.FormatDecimal(a.Decimals), a.Holdings.FormatDecimal(a.Decimals), where, a.Coverage, a.Liabilities.Root.Hash, pub)
				for _, wr := range a.Wallets {
					if s := wr.Signature; s != nil {
						verdict := "verifies"
						if !s.Verifies {
							verdict = "does NOT verify: " + s.Reason
						}
						fmt.Fprintf(w, "  wallet %d (%s) on chain %s: BIP-322 proof %s\n", wr.ID, wr.Kind, wr.OnChain.FormatDecimal(a.Decimals), verdict)
					}
				}
			}
			for _, u := range rep.Unmatched {
				fmt.Fprintf(w, "signature %s: %s\n", u.Source, u.Reason)
			}
			fmt.Fprintf(w, "report written to %s (attestation.json, attestation.html)\n", outDir)
			if !rep.OK {
				return &exitError{code: 3, err: errors.New("NOT every asset is covered, published as rebuilt and signed by its cold wallets")}
			}
			fmt.Fprintln(w, "every asset covered, published and signed")
			return nil
		},
	}
	dataFlag(cmd, &dir)
	cmd.Flags().StringVar(&at, "at", "", "the journal entry of the liabilities: a sequence number or an RFC 3339 time (default: the newest published)")
	cmd.Flags().Int32Var(&height, "height", -1, "the block of the holdings and of the messages (default: the node's tip)")
	cmd.Flags().Int32Var(&from, "from-height", 0, "the first block to scan: at or before the wallets' first output")
	cmd.Flags().StringVar(&exchange, "exchange", "kinko", "the exchange's name, as in the messages")
	cmd.Flags().StringArrayVar(&sigs, "signature", nil, "a signed message PSBT or BIP-322 full signature (repeat per wallet)")
	cmd.Flags().BoolVar(&noChain, "no-chain", false, "no node: holdings from the ledger only, no signatures checked")
	cmd.Flags().StringVar(&outDir, "out", "", "directory for attestation.json and attestation.html")
	nf.add(cmd)
	cmd.MarkFlagRequired("out")
	return cmd
}
