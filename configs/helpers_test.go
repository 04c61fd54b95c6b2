package configs_test

import "gopkg.in/yaml.v3"

func yamlDecode(s string, v any) error { return yaml.Unmarshal([]byte(s), v) }
