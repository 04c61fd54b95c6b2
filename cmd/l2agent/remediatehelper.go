package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"

	"github.com/l2agent/l2agent/remediate/helper"
)

// cmdRemediateHelper serves one request of the agent on the connection
// systemd passed as stdin (l2agent-remediate@.service, Accept=yes).
func cmdRemediateHelper(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("remediate-helper", "remediate-helper [--config FILE] [--state-dir DIR] [--user NAME] [--landlock=false]", stdout, stderr)
	config := fs.String("config", helper.DefaultConfig, "the policy: the agent's config file (root-owned)")
	stateDir := fs.String("state-dir", helper.DefaultStateDir, "the helper's audit log goes here (remediation-audit.jsonl)")
	userName := fs.String("user", helper.DefaultUser, "the user the agent runs as: besides root, the only peer served")
	landlock := fs.Bool("landlock", true, "confine each action to its own write paths with Landlock (where the kernel has it)")
	level := fs.String("log.level", "info", "log level: debug, info, warn, error")
	if done, code := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "l2agent remediate-helper: unexpected arguments %q\n", fs.Args())
		return 2
	}
	log, _, err := newLogger(stderr, *level, "logfmt")
	if err != nil {
		fmt.Fprintf(stderr, "l2agent remediate-helper: %v\n", err)
		return 2
	}
	log = log.With("component", "remediate-helper")
	uids := []uint32{0}
	if u, err := user.Lookup(*userName); err != nil {
		log.Warn("the agent's user is unknown: only root is served", "user", *userName, "err", err)
	} else if id, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
		uids = append(uids, uint32(id))
	}
	f, err := net.FileConn(os.Stdin)
	if err != nil {
		log.Error("stdin is not the accepted connection (run by l2agent-remediate.socket)", "err", err)
		return 1
	}
	conn, ok := f.(*net.UnixConn)
	if !ok {
		log.Error("stdin is not a unix socket connection")
		return 1
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = helper.ServeConn(ctx, conn, helper.Options{ConfigFile: *config, StateDir: *stateDir, AllowUIDs: uids, Landlock: *landlock, Log: log})
	if err != nil {
		log.Warn("request not served", "err", err)
		return 1
	}
	return 0
}
