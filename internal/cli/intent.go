package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/withdraw"
)

// intentKeyFile is a customer's intent key as `kinko intent keygen` keeps
// it: on the customer's own device, never sent.
type intentKeyFile struct {
	PrivateKey string `json:"private_key"`
	PublicKey  string `json:"public_key"`
}

func newIntentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "intent", Short: "act as a customer's device: make an intent key, sign withdrawal intents"}
	var out string
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "make an ed25519 intent key; print the public key to register",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(intentKeyFile{PrivateKey: hex.EncodeToString(priv), PublicKey: hex.EncodeToString(pub)}, "", "  ")
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := f.Write(b); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", hex.EncodeToString(pub))
			return nil
		},
	}
	keygen.Flags().StringVar(&out, "out", "", "key file to write (0600, never overwritten)")
	keygen.MarkFlagRequired("out")

	var keyFile, reqID, asset, addr, amount string
	var ttl time.Duration
	sign := &cobra.Command{
		Use:   "sign",
		Short: "sign a withdrawal intent; print the JSON body of POST /v1/me/withdrawals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			var k intentKeyFile
			if err := json.Unmarshal(b, &k); err != nil {
				return fmt.Errorf("%s is not an intent key file", keyFile)
			}
			priv, err := hex.DecodeString(k.PrivateKey)
			if err != nil || len(priv) != ed25519.PrivateKeySize {
				return errors.New("intent key file is corrupt")
			}
			v, err := withdraw.ParseAmount(amount)
			if err != nil || v.IsZero() {
				return fmt.Errorf("--amount must be a positive whole number of base units below 2^128, not %q", amount)
			}
			in := withdraw.Intent{RequestID: reqID, Asset: strings.ToUpper(asset), Address: addr, Amount: v, Expiry: time.Now().Add(ttl).Unix()}
			sig, err := in.Sign(ed25519.PrivateKey(priv))
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]any{"request_id": in.RequestID, "asset": in.Asset, "address": in.Address,
				"amount": v.String(), "expiry": time.Unix(in.Expiry, 0).UTC().Format(time.RFC3339), "public_key": k.PublicKey, "signature": hex.EncodeToString(sig)})
			fmt.Fprintln(cmd.OutOrStdout(), string(body))
			return nil
		},
	}
	sign.Flags().StringVar(&keyFile, "key", "", "intent key file")
	sign.Flags().StringVar(&reqID, "request-id", "", "unique request id")
	sign.Flags().StringVar(&asset, "asset", "BTC", "asset code")
	sign.Flags().StringVar(&addr, "address", "", "destination address (whitelisted)")
	sign.Flags().StringVar(&amount, "amount", "", "amount in base units (wei for ETH: up to 2^128-1)")
	sign.Flags().DurationVar(&ttl, "ttl", 10*time.Minute, "how long the intent is valid")
	for _, f := range []string{"key", "request-id", "address", "amount"} {
		sign.MarkFlagRequired(f)
	}
	cmd.AddCommand(keygen, sign)
	return cmd
}
