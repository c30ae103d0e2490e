package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/auth"
)

func newTOTPCmd() *cobra.Command {
	var secret string
	cmd := &cobra.Command{
		Use:   "totp",
		Short: "print the current TOTP code of a secret (for demos and tests acting as a person)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			code := auth.Code(secret, time.Now())
			if code == "" {
				return fmt.Errorf("--secret is not a base32 TOTP secret")
			}
			fmt.Fprintln(cmd.OutOrStdout(), code)
			return nil
		},
	}
	cmd.Flags().StringVar(&secret, "secret", "", "the base32 TOTP secret")
	cmd.MarkFlagRequired("secret")
	return cmd
}
