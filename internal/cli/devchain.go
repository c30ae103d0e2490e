package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/spf13/cobra"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/demo"
)

// Bounds of the dev's chain routes.
const (
	// maxDevPay is the most one `kinko dev pay` sends: the node's coins
	// are 25 BTC coinbases.
	maxDevPay = 20_0000_0000
	// maxDevMine bounds the blocks one `kinko dev mine` mines.
	maxDevMine = 1000
)

// DevPayRequest is the body of POST /dev/pay: pay amount satoshi (a
// decimal string) to address from the dev node's coins.
type DevPayRequest struct {
	Address string `json:"address"`
	Amount  string `json:"amount"`
}

// devMineRequest reads an authorized request to mine 1 to maxDevMine
// blocks; a refusal is answered here.
func devMineRequest(w http.ResponseWriter, r *http.Request, token string) (DevMineRequest, bool) {
	var req DevMineRequest
	if !devAuthorized(w, r, token) || !decodeDev(w, r, &req) {
		return req, false
	}
	if req.Blocks < 1 || req.Blocks > maxDevMine {
		http.Error(w, fmt.Sprintf("blocks must be 1 to %d", maxDevMine), http.StatusBadRequest)
		return req, false
	}
	return req, true
}

// DevMineRequest is the body of POST /dev/mine.
type DevMineRequest struct {
	Blocks int `json:"blocks"`
}

func decodeDev(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "malformed body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// devChainRoutes serves the dev node's wallet to a person trying kinko:
// POST /dev/pay pays any address and POST /dev/mine mines, both with the
// dev token from this machine only.
func devChainRoutes(mux *http.ServeMux, chain *demo.Chain, token string) {
	mux.HandleFunc("POST /dev/pay", func(w http.ResponseWriter, r *http.Request) {
		if !devAuthorized(w, r, token) {
			return
		}
		var req DevPayRequest
		if !decodeDev(w, r, &req) {
			return
		}
		amt, err := strconv.ParseInt(req.Amount, 10, 64)
		if err != nil || amt <= 0 || amt > maxDevPay {
			http.Error(w, fmt.Sprintf("amount must be a whole number of satoshi from 1 to %d", maxDevPay), http.StatusBadRequest)
			return
		}
		a, err := btcutil.DecodeAddress(req.Address, regtest.Net)
		if err != nil || !a.IsForNet(regtest.Net) {
			http.Error(w, "address is not a regtest address", http.StatusBadRequest)
			return
		}
		tx, err := chain.Node.SendTo(r.Context(), map[string]btcutil.Amount{a.EncodeAddress(): btcutil.Amount(amt)})
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"txid": tx.TxHash().String()})
	})
	mux.HandleFunc("POST /dev/mine", func(w http.ResponseWriter, r *http.Request) {
		req, ok := devMineRequest(w, r, token)
		if !ok {
			return
		}
		hashes, err := chain.Node.Generate(r.Context(), uint32(req.Blocks))
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		_, height, _ := chain.Node.Client().BestBlock(r.Context())
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"blocks": len(hashes), "height": height})
	})
}

// devPost sends body to a running dev's route with the dev token of its
// data directory and prints the answer.
func devPost(cmd *cobra.Command, devURL, dir, route string, body any) error {
	tok, err := readDevToken(dir)
	if err != nil {
		return fmt.Errorf("the running dev's token: %w (is --data the dev's data directory?)", err)
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(cmd.Context(), "POST", strings.TrimRight(devURL, "/")+route, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("kinko dev: %s: %s", res.Status, strings.TrimSpace(string(out)))
	}
	fmt.Fprint(cmd.OutOrStdout(), string(out))
	return nil
}

func newDevPayCmd() *cobra.Command {
	var devURL, dir, address, amount string
	cmd := &cobra.Command{
		Use:   "pay",
		Short: "pay an address from a running kinko dev's node (a deposit address, say): a regtest address in satoshi, an Ethereum address (0x...) in wei",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.HasPrefix(address, "0x") {
				return devPost(cmd, devURL, dir, "/dev/eth/pay", DevPayRequest{Address: address, Amount: amount})
			}
			return devPost(cmd, devURL, dir, "/dev/pay", DevPayRequest{Address: address, Amount: amount})
		},
	}
	cmd.Flags().StringVar(&devURL, "dev", "http://127.0.0.1:8080", "the running kinko dev's URL")
	dataFlag(cmd, &dir)
	cmd.Flags().StringVar(&address, "address", "", "the regtest or Ethereum (0x...) address to pay")
	cmd.Flags().StringVar(&amount, "amount", "", "satoshi (BTC) or wei (ETH), a whole number")
	cmd.MarkFlagRequired("address")
	cmd.MarkFlagRequired("amount")
	return cmd
}

func newDevMineCmd() *cobra.Command {
	var devURL, dir, asset string
	var blocks int
	cmd := &cobra.Command{
		Use:   "mine",
		Short: "mine blocks on a running kinko dev's node (6 credit a BTC deposit, 3 an ETH one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch asset {
			case "BTC":
				return devPost(cmd, devURL, dir, "/dev/mine", DevMineRequest{Blocks: blocks})
			case "ETH":
				if !cmd.Flags().Changed("blocks") {
					blocks = demo.EthConfirmations
				}
				return devPost(cmd, devURL, dir, "/dev/eth/mine", DevMineRequest{Blocks: blocks})
			}
			return fmt.Errorf("--asset %q: BTC or ETH", asset)
		},
	}
	cmd.Flags().StringVar(&asset, "asset", "BTC", "the node to mine on: BTC (btcd regtest) or ETH (geth --dev)")
	cmd.Flags().StringVar(&devURL, "dev", "http://127.0.0.1:8080", "the running kinko dev's URL")
	dataFlag(cmd, &dir)
	cmd.Flags().IntVar(&blocks, "blocks", demo.Confirmations, "blocks to mine (default 6 on BTC, 3 on ETH)")
	return cmd
}
