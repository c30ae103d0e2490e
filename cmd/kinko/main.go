// Command kinko is the custody and operations core of a crypto-asset
// exchange: one binary, one subcommand per role. See README.md.
package main

import (
	"os"

	"kinko/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
