// Package testkit holds helpers shared by the tests of several packages.
// (Not named testutil, which prometheus/client_golang's tests already use.)
package testkit

import (
	"io"
	"log/slog"
)

// QuietLogger returns a logger that writes nowhere.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
