package memory

import (
	_ "embed"

	"github.com/l2agent/l2agent/configs"
)

//go:embed procedures.yaml
var procedures []byte

func init() { configs.RegisterProcedures("checks/memory/README.md#procedures", procedures) }
