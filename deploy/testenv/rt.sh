#!/usr/bin/env bash
# Installs (once) and runs a real Request Tracker 5 from Debian's packages on
# 127.0.0.1, for the rt ticket backend's tests and the end-to-end tests.
#
# Usage: deploy/testenv/rt.sh [ACTION]
#   (none)      start the instance in $RT_STATE_DIR (default: a long-lived
#               one in $RT_BASE_DIR/default on port 18080) if it is not
#               running, and print its environment
#   --reset     stop it, give it a fresh copy of the fixtures database, start
#   --stop      stop it (its database stays)
#   --instance  a new throw-away instance in $RT_BASE_DIR/instances/ on
#               $RT_PORT, owned by process $RT_OWNER_PID (default: the
#               caller); removed by the first run after its owner is gone,
#               if nobody removed it before
#   --remove    stop the instance in $RT_STATE_DIR and delete it
#   --prepare   only install the packages and make the fixtures database
#
# Every start first installs the packages if they are missing and makes the
# fixtures database once per $RT_BASE_DIR: `rt-setup-database-5 --action
# init`, the fixtures below, then a snapshot that every instance starts from
# (a copy, so starting is RT's boot time, about 3 s). Each instance has its
# own database, port and config (RT_SITE_CONFIG and RT_SITE_CONFIG_DIR point
# into its dir); nothing under /etc/request-tracker5 is changed.
#
# stdout carries only `export K=V` lines, so: eval "$(deploy/testenv/rt.sh)".
# Progress and timings go to stderr. Needs root on Debian 12.
#
# Fixtures:
#   queues      $RT_QUEUE_L2 (HostChecks) and $RT_QUEUE_L3 (HostChecks-L3)
#   CF          $RT_CUSTOM_FIELD (HostCheckKey): ticket, freeform, one value,
#               on both queues
#   l2agent     the agent's user, with the token $RT_TOKEN and just the rights
#               it needs, on the two queues and the CF
#   l3engineer  ($RT_L3_OWNER) may own tickets in both queues
#   root        the token $RT_ADMIN_TOKEN, for the tests' own queries
#   The scrips that send mail are disabled: there is no MTA, and rendering
#   their templates makes each create ten times slower.
#
# Environment (all optional):
#   RT_BASE_DIR   fixtures snapshot and instances (default /var/lib/l2agent-testenv/rt)
#   RT_STATE_DIR  the instance's dir (default $RT_BASE_DIR/default)
#   RT_PORT       its port on 127.0.0.1 (default 18080)
#   RT_WORKERS    its server worker processes (default 2)
set -euo pipefail

BASE=${RT_BASE_DIR:-/var/lib/l2agent-testenv/rt}
STATE=${RT_STATE_DIR:-$BASE/default}
PORT=${RT_PORT:-18080}
WORKERS=${RT_WORKERS:-2}
QUEUE_L2=HostChecks
QUEUE_L3=HostChecks-L3
CF=HostCheckKey
AGENT_USER=l2agent
L3_USER=l3engineer
# Bump when the fixtures change: the next run makes them again.
FIXTURES_VERSION=1

PKGS=(request-tracker5 rt5-db-sqlite rt5-standalone w3m curl)
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server
TEMPLATE=$BASE/template
INSTANCES=$BASE/instances

T0=$EPOCHREALTIME
log() { printf 'rt.sh: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
# Seconds since $1 (an $EPOCHREALTIME), two decimals.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
# RT runs as www-data, with the config of instance dir $1.
as_rt() {
	local dir=$1
	shift
	RT_SITE_CONFIG=$dir/RT_SiteConfig.pm RT_SITE_CONFIG_DIR=$dir/RT_SiteConfig.d \
		setpriv --reuid=www-data --regid=www-data --init-groups "$@"
}
pid_of() { [[ -s $1/rt-server.pid ]] && cat "$1/rt-server.pid"; }
running() {
	local pid
	pid=$(pid_of "$1") && kill -0 "$pid" 2>/dev/null
}

install_rt() {
	local p missing=()
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	command -v apt-get >/dev/null || die "apt-get not found: Request Tracker comes from Debian packages"
	log "installing ${missing[*]}"
	local t0=$EPOCHREALTIME
	# Answer every debconf question. No database from dbconfig-common: each
	# instance has its own.
	debconf-set-selections <<-EOF
		request-tracker5 request-tracker5/rtname string l2agent-testenv
		request-tracker5 request-tracker5/organization string l2agent.test
		request-tracker5 request-tracker5/correspondaddress string rt@localhost
		request-tracker5 request-tracker5/commentaddress string rt-comment@localhost
		request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1
		request-tracker5 request-tracker5/webpath string /
		request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
		request-tracker5 request-tracker5/install-cronjobs boolean false
		request-tracker5 request-tracker5/dbconfig-install boolean false
	EOF
	# The packages pull in an MTA whose postinst starts it: deny every
	# start with policy-rc.d, unless there is one already (then it decides).
	local policy=/usr/sbin/policy-rc.d ours=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# temporary, written by l2agent deploy/testenv/rt.sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		ours=1
		# shellcheck disable=SC2064 # expand $policy now
		trap "rm -f '$policy'" EXIT
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-unsafe-io \
		"${missing[@]}" >&2 </dev/null
	if [[ $ours -eq 1 ]]; then
		rm -f "$policy"
		trap - EXIT
	fi
	log "installed in $(since "$t0") s: $(dpkg-query -W -f='${Package} ${Version}' request-tracker5)"
}

# write_config DIR PORT: the whole site config of one instance.
write_config() {
	local dir=$1 port=$2
	install -d -m 0750 -o www-data -g www-data "$dir" "$dir/RT_SiteConfig.d" \
		"$dir/mason_data" "$dir/session_data"
	printf '1;\n' >"$dir/RT_SiteConfig.pm"
	cat >"$dir/RT_SiteConfig.d/l2agent-testenv.pm" <<-EOF
		# Written by l2agent deploy/testenv/rt.sh: a throw-away test RT.
		Set(\$rtname, "l2agent-testenv");
		Set(\$Organization, "l2agent.test");
		Set(\$CorrespondAddress, 'rt@localhost');
		Set(\$CommentAddress, 'rt-comment@localhost');
		Set(\$WebPath, "");
		Set(\$WebDomain, "127.0.0.1");
		Set(\$WebPort, $port);
		Set(\$WebBaseURL, "http://127.0.0.1:$port");
		Set(\$DatabaseType, "SQLite");
		Set(\$DatabaseName, "$dir/rt.sqlite");
		Set(\$MasonDataDir, "$dir/mason_data");
		Set(\$MasonSessionDir, "$dir/session_data");
		# REST 2.0 checks the token's bcrypt hash on every request: at RT's
		# default cost (12) that is 0.25 s of CPU each time. Tokens made
		# after this setting use the cheapest cost.
		Set(\$BcryptCost, 4);
		Set(\$LogToSyslog, undef);
		Set(\$LogToSTDERR, "warning");
		# No MTA: any mail would be appended to an mbox file.
		Set(\$MailCommand, "mbox");
		1;
	EOF
	chown -R www-data:www-data "$dir"
}

# The fixtures database and its env, made once per $BASE: every instance
# starts from a copy.
make_template() {
	if [[ -s $TEMPLATE/rt.sqlite.snapshot ]] &&
		grep -qx "# fixtures version $FIXTURES_VERSION" "$TEMPLATE/env" 2>/dev/null; then
		return 0
	fi
	local t0=$EPOCHREALTIME
	log "making the fixtures database in $TEMPLATE"
	rm -rf "$TEMPLATE"
	write_config "$TEMPLATE" 1
	# Nobody logs in with a password, only with tokens: a random one, not kept.
	local pwfile=$TEMPLATE/.root-password
	(
		umask 077
		head -c 18 /dev/urandom | base64 >"$pwfile"
	)
	chown www-data "$pwfile"
	if ! as_rt "$TEMPLATE" /usr/sbin/rt-setup-database-5 --action init --root-password-file "$pwfile" \
		>"$TEMPLATE/setup-database.log" 2>&1; then
		cat "$TEMPLATE/setup-database.log" >&2
		die "rt-setup-database-5 failed"
	fi
	rm -f "$pwfile"
	log "database initialised in $(since "$t0") s"

	local out
	out=$(QUEUE_L2=$QUEUE_L2 QUEUE_L3=$QUEUE_L3 CF=$CF AGENT_USER=$AGENT_USER L3_USER=$L3_USER \
		as_rt "$TEMPLATE" perl -w <<-'PERL'
			use strict;
			use lib '/usr/local/share/request-tracker5/lib', '/usr/share/request-tracker5/lib';
			use RT;
			RT::LoadConfig();
			RT::Init();
			my $sys = RT->SystemUser;
			sub must { my ($what, $ok, $msg) = @_; die "$what: $msg\n" unless $ok; }

			my @queues;
			for my $name ($ENV{QUEUE_L2}, $ENV{QUEUE_L3}) {
			    my $q = RT::Queue->new($sys);
			    must("queue $name", $q->Create(Name => $name, Description => "l2agent host checks ($name)"));
			    push @queues, $q;
			}

			my $cf = RT::CustomField->new($sys);
			must("custom field", $cf->Create(Name => $ENV{CF}, Type => 'Freeform', MaxValues => 1,
			    LookupType => RT::Ticket->CustomFieldLookupType,
			    Description => 'l2agent alert key (de-duplication)'));
			must("apply custom field", $cf->AddToObject($_)) for @queues;

			sub user {
			    my $u = RT::User->new($sys);
			    must("user $_[0]", $u->Create(Name => $_[0], RealName => $_[1], Privileged => 1,
			                                  EmailAddress => "$_[0]\@localhost"));
			    return $u;
			}
			sub grant {
			    my ($u, $obj, @rights) = @_;
			    must("grant $_", $u->PrincipalObj->GrantRight(Right => $_, Object => $obj)) for @rights;
			}
			# The agent may find, create, comment on, move between the two
			# queues, resolve, reopen and hand over its tickets; nothing global.
			my $agent = user($ENV{AGENT_USER}, 'l2agent');
			my $l3 = user($ENV{L3_USER}, 'L3 engineer');
			for my $q (@queues) {
			    grant($agent, $q, qw(SeeQueue ShowTicket CreateTicket ModifyTicket
			                         CommentOnTicket ShowTicketComments ReassignTicket));
			    grant($l3, $q, qw(SeeQueue ShowTicket OwnTicket));
			}
			grant($agent, $cf, qw(SeeCustomField ModifyCustomField));

			my $scrips = RT::Scrips->new($sys);
			$scrips->UnLimit;
			while (my $s = $scrips->Next) {
			    next unless $s->ScripActionObj->ExecModule =~ /^(?:Notify|NotifyAsComment|Autoreply)$/;
			    must("disable scrip " . $s->id, $s->SetDisabled(1));
			}

			sub token {
			    my ($id, $msg, $token) = RT::AuthToken->new($sys)->Create(
			        Owner => $_[0]->id, Description => 'l2agent-testenv');
			    must("token for " . $_[0]->Name, $id, $msg);
			    return $token;
			}
			my $root = RT::User->new($sys);
			$root->Load('root');
			print "TOKEN=", token($agent), "\n";
			print "ADMIN_TOKEN=", token($root), "\n";
		PERL
	)
	local token admin_token
	token=$(sed -n 's/^TOKEN=//p' <<<"$out")
	admin_token=$(sed -n 's/^ADMIN_TOKEN=//p' <<<"$out")
	[[ -n $token && -n $admin_token ]] || die "the fixture script printed no tokens"
	mv "$TEMPLATE/rt.sqlite" "$TEMPLATE/rt.sqlite.snapshot"
	(
		umask 077
		cat >"$TEMPLATE/env.tmp"
	) <<-EOF
		# fixtures version $FIXTURES_VERSION
		export RT_TOKEN=$token
		export RT_ADMIN_TOKEN=$admin_token
		export RT_QUEUE_L2=$QUEUE_L2
		export RT_QUEUE_L3=$QUEUE_L3
		export RT_CUSTOM_FIELD=$CF
		export RT_L3_OWNER=$L3_USER
	EOF
	mv "$TEMPLATE/env.tmp" "$TEMPLATE/env"
	log "fixtures made in $(since "$t0") s"
}

# A fresh copy of the fixtures database for instance $1.
restore() {
	rm -f "$1/rt.sqlite" "$1/rt.sqlite-journal" "$1/rt.sqlite-wal" "$1/rt.sqlite-shm"
	cp "$TEMPLATE/rt.sqlite.snapshot" "$1/rt.sqlite"
	chown www-data:www-data "$1/rt.sqlite"
	# A write-ahead log (kept in the file): readers never wait for a
	# writer's commit and its sync, nor a commit for readers, as on the
	# MySQL or PostgreSQL of a production RT. In SQLite's default rollback
	# journal a commit locks every other worker out until its sync ends
	# (and every REST call commits: RT records the token's LastUsed).
	setpriv --reuid=www-data --regid=www-data --init-groups perl -MDBI -e \
		'DBI->connect("dbi:SQLite:dbname=$ARGV[0]", "", "", {RaiseError => 1})->do("PRAGMA journal_mode=WAL")' \
		"$1/rt.sqlite"
}

# stop_rt DIR: TERM to the server's process group (the master and its
# workers), KILL after 1 s: Starlet takes 3 s to wind down, and nothing of
# a test RT is worth the wait (SQLite survives a kill).
stop_rt() {
	local dir=$1 pid pgid i
	pid=$(pid_of "$dir") || return 0
	pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') || true
	if [[ -n $pgid ]]; then
		kill -TERM -- "-$pgid" 2>/dev/null || true
		for ((i = 0; i < 10; i++)); do
			kill -0 -- "-$pgid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pgid" 2>/dev/null || true
	fi
	rm -f "$dir/rt-server.pid"
}

# start_rt DIR PORT
start_rt() {
	local dir=$1 port=$2 url=http://127.0.0.1:$2
	running "$dir" && return 0
	if curl -s -o /dev/null --max-time 2 "$url/"; then
		die "something else answers on $url (set RT_PORT to use another port)"
	fi
	local t0=$EPOCHREALTIME
	log "starting RT on $url (log: $dir/rt-server.log)"
	: >"$dir/rt-server.log"
	rm -f "$dir/rt-server.pid"
	# start-stop-daemon --background makes the server a session leader, so
	# stop_rt can signal its whole process group.
	RT_SITE_CONFIG=$dir/RT_SiteConfig.pm RT_SITE_CONFIG_DIR=$dir/RT_SiteConfig.d \
		start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$dir/rt-server.pid" \
		--user www-data --chuid www-data:www-data --chdir "$dir" --output "$dir/rt-server.log" \
		--startas "$RT_SERVER" -- \
		--server Starlet --host 127.0.0.1 --port "$port" --max-workers "$WORKERS"
	# Ready when an authenticated REST 2.0 call answers 200.
	local token code=000 i
	token=$(sed -n 's/^export RT_ADMIN_TOKEN=//p' "$TEMPLATE/env")
	for ((i = 0; i < 600; i++)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
			-H "Authorization: token $token" "$url/REST/2.0/queues/all" || true)
		[[ $code == 200 ]] && break
		running "$dir" || {
			tail -n 30 "$dir/rt-server.log" >&2
			die "rt-server exited while starting"
		}
		sleep 0.1
	done
	if [[ $code != 200 ]]; then
		tail -n 30 "$dir/rt-server.log" >&2
		die "RT not ready after 60 s (last HTTP status $code)"
	fi
	log "RT ready in $(since "$t0") s"
}

print_env() {
	local dir=$1 port
	port=$(cat "$dir/port")
	printf 'export RT_URL=http://127.0.0.1:%s\n' "$port"
	printf 'export RT_STATE_DIR=%s\n' "$dir"
	printf 'export RT_LOG=%s\n' "$dir/rt-server.log"
	grep '^export ' "$TEMPLATE/env"
}

# Throw-away instances whose owner process is gone: stop and delete them.
reap() {
	local dir owner
	for dir in "$INSTANCES"/*/; do
		dir=${dir%/}
		[[ -f $dir/owner ]] || continue
		owner=$(cat "$dir/owner")
		kill -0 "$owner" 2>/dev/null && continue
		log "removing $dir (its owner, process $owner, is gone)"
		stop_rt "$dir"
		rm -rf "$dir"
	done
}

main() {
	local action=${1:-start}
	case $action in
	start | --reset | --stop | --instance | --remove | --prepare) ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
		exit 0
		;;
	*) die "usage: $0 [--reset | --stop | --instance | --remove | --prepare]" ;;
	esac
	[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and runs RT as www-data)"
	[[ $PORT =~ ^[0-9]+$ ]] || die "RT_PORT '$PORT' is not a port number"
	mkdir -p "$BASE"

	case $action in
	--stop)
		stop_rt "$STATE"
		log "stopped"
		return 0
		;;
	--remove)
		[[ $STATE == "$INSTANCES"/* ]] || die "--remove deletes only instances under $INSTANCES"
		stop_rt "$STATE"
		rm -rf "$STATE"
		return 0
		;;
	esac

	# Installing and making the fixtures: one run at a time (test packages
	# start instances in parallel).
	exec 9>"$BASE/lock"
	flock 9
	install_rt
	make_template
	reap
	flock -u 9
	[[ $action == --prepare ]] && return 0

	if [[ $action == --instance ]]; then
		mkdir -p "$INSTANCES"
		STATE=$(mktemp -d "$INSTANCES/XXXXXX")
		echo "${RT_OWNER_PID:-$PPID}" >"$STATE/owner"
		# shellcheck disable=SC2064 # expand $STATE now
		trap "stop_rt '$STATE'; rm -rf '$STATE'" EXIT # unless it starts
	fi
	mkdir -p "$STATE"
	exec 8>"$STATE/.lock"
	flock 8
	if [[ $action == --reset ]] ||
		{ [[ -s $STATE/port && $(cat "$STATE/port") != "$PORT" ]] && running "$STATE"; }; then
		stop_rt "$STATE"
	fi
	write_config "$STATE" "$PORT"
	echo "$PORT" >"$STATE/port"
	if [[ $action == --reset || ! -s $STATE/rt.sqlite ]]; then
		restore "$STATE"
	fi
	start_rt "$STATE" "$PORT"
	trap - EXIT
	print_env "$STATE"
	log "done in $(since "$T0") s"
}

main "$@"
