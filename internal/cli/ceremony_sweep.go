package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"

	"kinko/internal/api"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethcold"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
)

// maxSweepDeposits bounds the deposit Safes one `kinko ceremony
// sweep-deposits` prepares (each one ceremony, one request file).
const maxSweepDeposits = 500

// newCeremonySweepDepositsCmd is `kinko ceremony sweep-deposits`: the
// sweeps of a cold customer Safe wallet's deposit Safes into the
// wallet's own Safe, one ceremony and one request file per deposit Safe
// (each is its own Safe, with its own EIP-712 domain and nonces).
func newCeremonySweepDepositsCmd() *cobra.Command {
	var rpcURL, descText, idPrefix, outDir, tokenFlag string
	var wallet uint32
	var safeSalt uint64
	var deposits []uint
	var f coreFlags
	cmd := &cobra.Command{
		Use:   "sweep-deposits",
		Short: "prepare the sweeps of a cold customer Safe wallet's deposit Safes into the wallet's own Safe: each journaled in the core, then a request per deposit Safe for the offline signers",
		Long: "For each --deposit INDEX the deposit Safe's address is derived from --descriptor (the wallet's custody descriptor) and\n" +
			"the index, its whole balance read from the node, and a SafeTx built at its nonce (0 while it has no code) paying that\n" +
			"balance to the wallet's own Safe, the counterfactual Safe of the same descriptor at --safe-salt, which must be deployed.\n" +
			"Each is journaled in the core (POST /v1/ceremonies, purpose safe, a sweep with its deposit index, as the operator signed\n" +
			"in: the core derives both addresses from the wallet's journaled descriptor and refuses any other) before its request\n" +
			"file ID-PREFIX-dINDEX.json is written in --out-dir. A deposit Safe holding nothing is skipped. The offline machines\n" +
			"derive the deposit Safe again from their registered Safe's descriptor; `kinko cold submit` deploys its proxy if needed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(deposits) == 0 || len(deposits) > maxSweepDeposits {
				return fmt.Errorf("give 1 to %d --deposit indexes: nothing journaled", maxSweepDeposits)
			}
			for i, d := range deposits {
				if d > 1<<32-1 || slices.Contains(deposits[:i], d) {
					return fmt.Errorf("--deposit %d: a deposit index below 2^32, once: nothing journaled", d)
				}
				if uint64(d) == safeSalt {
					return fmt.Errorf("--deposit %d is the wallet's Safe (--safe-salt): nothing journaled", d)
				}
			}
			if wallet == 0 {
				return fmt.Errorf("give --wallet: the custody wallet id of the cold customer Safe wallet: nothing journaled")
			}
			desc, err := ethwallet.Parse(descText)
			if err != nil {
				return fmt.Errorf("--descriptor: %w: nothing journaled", err)
			}
			if !plainID(idPrefix) {
				return fmt.Errorf("--id-prefix %q: printable ASCII without spaces, at most 50 bytes: nothing journaled", idPrefix)
			}
			var tokenCode string
			var tokenAddr common.Address
			if tokenFlag != "" {
				code, a, ok := strings.Cut(tokenFlag, "=")
				if tokenAddr, err = ethcold.ParseAddress(a); !ok || code == "" || err != nil || tokenAddr == (common.Address{}) {
					return fmt.Errorf("--token %q: CODE=0xCONTRACT, the listed token's asset code and contract: nothing journaled", tokenFlag)
				}
				tokenCode = code
			}
			if st, err := os.Stat(outDir); err != nil || !st.IsDir() {
				return fmt.Errorf("--out-dir %s is not a directory: nothing journaled", outDir)
			}
			pred, err := book.Predictor(safe.ProxyArtifacts(), desc)
			if err != nil {
				return err
			}
			into := pred.AddressIndex(safeSalt)
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			c, err := eth.Dial(ctx, rpcURL)
			if err != nil {
				return err
			}
			defer c.Close()
			if c.ChainID().Uint64() != desc.ChainID || !c.ChainID().IsUint64() {
				return fmt.Errorf("the node is on chain %s, the descriptor on %d: nothing journaled", c.ChainID(), desc.ChainID)
			}
			if code, err := c.Code(ctx, into); err != nil {
				return err
			} else if len(code) == 0 {
				return fmt.Errorf("the wallet's Safe at salt nonce %d (%s) has no code on chain %d: deploy it first (nothing journaled)", safeSalt, into.Hex(), desc.ChainID)
			}
			// Everything read and built before anything is journaled.
			type sweep struct {
				index uint32
				req   *ethcold.Request
				tx    *safe.SafeTx
				out   string
				bal   *big.Int
			}
			var sweeps []sweep
			amountText := func(x *big.Int) string {
				if tokenCode == "" {
					return ethcold.FormatEther(x)
				}
				return x.String() + " " + tokenCode + " base units"
			}
			w := cmd.OutOrStdout()
			for _, d := range deposits {
				idx := uint32(d)
				from := pred.AddressIndex(uint64(idx))
				var bal *big.Int
				if tokenCode == "" {
					bal, err = c.Balance(ctx, from)
				} else {
					bal, err = tokenBalance(ctx, c, tokenAddr, from)
				}
				if err != nil {
					return err
				}
				if bal.Sign() == 0 {
					fmt.Fprintf(w, "deposit Safe %d (%s) holds nothing: skipped\n", idx, from.Hex())
					continue
				}
				nonce := new(big.Int)
				if code, err := c.Code(ctx, from); err != nil {
					return err
				} else if len(code) > 0 {
					if nonce, err = safe.Nonce(ctx, c, from); err != nil {
						return fmt.Errorf("reading the nonce of deposit Safe %d (%s): %w: nothing journaled", idx, from.Hex(), err)
					}
				}
				tx := safe.Transfer(into, bal, nonce)
				if tokenCode != "" {
					tx = &safe.SafeTx{To: tokenAddr, Value: new(big.Int), Data: core.TokenTransferData(into, bal), SafeTxGas: safe.SafeTxGasFor(1),
						BaseGas: new(big.Int), GasPrice: new(big.Int), Nonce: nonce}
				}
				id := fmt.Sprintf("%s-d%d", idPrefix, idx)
				req, err := ethcold.NewRequest(id, ethcold.Sweep, c.ChainID(), from, tx)
				if err != nil {
					return err
				}
				req.Deposit = &ethcold.DepositRef{Descriptor: desc.String(), Index: idx}
				out := filepath.Join(outDir, id+".json")
				if _, err := os.Stat(out); err == nil {
					return fmt.Errorf("%s exists: nothing journaled", out)
				}
				sweeps = append(sweeps, sweep{idx, req, tx, out, bal})
			}
			if len(sweeps) == 0 {
				return fmt.Errorf("no deposit Safe named holds anything: nothing journaled")
			}
			oc, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			total := new(big.Int)
			for i, s := range sweeps {
				sr := &api.SafeCeremonyRequest{Purpose: ethcold.Sweep, Wallet: wallet, SafeTxHash: s.req.SafeTxHash,
					SafeTx: custody.SafeTx{ChainID: desc.ChainID, Safe: s.req.TypedData.Domain.VerifyingContract, To: s.tx.To.Hex(), Value: s.tx.Value.String(),
						Data: "0x" + hex.EncodeToString(s.tx.Data), Operation: uint8(safe.OpCall), Nonce: s.tx.Nonce.Uint64()},
					Pays:    []api.SafePayRequest{{Wallet: wallet, Address: into.Hex(), Amount: s.bal.String()}},
					Deposit: &api.DepositSweepRequest{Index: s.index, SafeSalt: safeSalt, Asset: tokenCode}}
				var v api.CeremonyView
				if err := oc.Post(cmd.Context(), "/v1/ceremonies", api.CeremonyRequest{Purpose: "safe", ID: s.req.ID, Safe: sr}, &v, http.StatusCreated); err != nil {
					return fmt.Errorf("the core did not journal ceremony %s: %w (%d of %d journaled and written before it; no request written for it)", s.req.ID, err, i, len(sweeps))
				}
				if err := ethcold.WriteNew(s.out, s.req, 0o644); err != nil {
					return fmt.Errorf("ceremony %s is journaled, its request is not written: %w", s.req.ID, err)
				}
				total.Add(total, s.bal)
				fmt.Fprintf(w, "sweep %s: %s from deposit Safe %d (%s) at its nonce %s to the wallet's Safe %s (SafeTx %s, journaled by %s); request written to %s\n",
					s.req.ID, amountText(s.bal), s.index, s.req.TypedData.Domain.VerifyingContract, s.tx.Nonce, into.Hex(), s.req.SafeTxHash, oc.Operator, s.out)
			}
			fmt.Fprintf(w, "%d sweep(s) of wallet %d, %s in all\n", len(sweeps), wallet, amountText(total))
			return nil
		},
	}
	f.addOptional(cmd)
	cmd.Flags().StringVar(&rpcURL, "eth-rpc", "", "the Ethereum node's JSON-RPC URL")
	cmd.Flags().Uint32Var(&wallet, "wallet", 0, "the custody wallet id of the cold customer Safe wallet")
	cmd.Flags().StringVar(&descText, "descriptor", "", "the wallet's custody descriptor, safe-1.4.1(...)")
	cmd.Flags().Uint64Var(&safeSalt, "safe-salt", 0, "the salt nonce of the wallet's own Safe, which the sweeps pay")
	cmd.Flags().UintSliceVar(&deposits, "deposit", nil, "deposit indexes to sweep, comma-separated (each the customer's deposit address index)")
	cmd.Flags().StringVar(&idPrefix, "id-prefix", "", "ceremony id prefix: each sweep is PREFIX-dINDEX")
	cmd.Flags().StringVar(&outDir, "out-dir", ".", "directory for the request files")
	cmd.Flags().StringVar(&tokenFlag, "token", "", "CODE=0xCONTRACT: sweep this listed token's balances (its transfer to the wallet's Safe) instead of Ether")
	for _, f := range []string{"eth-rpc", "descriptor", "safe-salt", "id-prefix", "wallet"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

// tokenBalance is the ERC-20 balanceOf(holder) of the contract, at the
// node's latest block.
func tokenBalance(ctx context.Context, c *eth.Client, contract, holder common.Address) (*big.Int, error) {
	out, err := c.Call(ctx, holder, contract, append([]byte{0x70, 0xa0, 0x82, 0x31}, common.LeftPadBytes(holder.Bytes(), 32)...))
	if err != nil {
		return nil, fmt.Errorf("balanceOf(%s) of %s: %w", holder.Hex(), contract.Hex(), err)
	}
	if len(out) != 32 {
		return nil, fmt.Errorf("balanceOf(%s) of %s returned %d bytes: not an ERC-20", holder.Hex(), contract.Hex(), len(out))
	}
	return new(big.Int).SetBytes(out), nil
}

// plainID reports an id prefix that leaves room for "-dINDEX" within a
// ceremony id's 64 bytes: printable ASCII, no spaces, at most 50 bytes.
func plainID(s string) bool {
	if s == "" || len(s) > 50 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
