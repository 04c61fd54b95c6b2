package testenv

import "syscall"

// sysProcAttr makes the kernel kill a started server when the test binary
// dies (a panic, or go test's -timeout), so none is left running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
