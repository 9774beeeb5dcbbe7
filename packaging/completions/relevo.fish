# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_relevo_global_optspecs
    string join \n h/help V/version
end

function __fish_relevo_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_relevo_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_relevo_using_subcommand
    set -l cmd (__fish_relevo_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c relevo -n "__fish_relevo_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c relevo -n "__fish_relevo_needs_command" -s V -l version -d 'Print version'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "run" -d 'Run the daemon in the foreground (logs to stderr; RELEVO_LOG=debug for more)'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "check" -d 'Validate a configuration file: prints a summary and exits 0, or the errors and exits 1'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "fence" -d 'Fence a cluster node through its [[fence]] device, directly (without the daemon): test a device, or power a node off by hand. Exits 0 on success, 1 with the error'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "status" -d 'Show the running daemon\'s instances: state, master, VIPs, packet counters'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "events" -d 'The daemon\'s event history: transitions with their reasons, hook runs, operator actions (oldest first, the last 1000)'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "standby" -d 'Release everything this node holds, gracefully (VIPs kept until the next owner has them), and stay a standby until `relevo takeover`'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "takeover" -d 'Compete again after standby or a switchover (heartbeat\'s scopes: local = groups that prefer this node and every VRRP instance, foreign = the other groups, all, failback = local). Refused when this node is not healthy (no quorum, a fence pending) unless --force'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "maintenance" -d 'Maintenance: `on` hands everything over with no downtime and keeps this node out, across restarts (a flag under state_dir), until `off`'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "switchover" -d 'Planned move of one VRRP instance (this node must be its master) or group (this node must hold it); this node stays out of it until `relevo takeover`'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "import-keepalived" -d 'Convert a keepalived.conf to a Relevo config (stdout, or -o FILE): vrrp_instance (interface, virtual_router_id, priority, state, advert_int, version, nopreempt, preempt_delay, virtual_ipaddress, unicast_peer, unicast_src_ip, PASS authentication, notify scripts, garp settings, use_vmac) and global_defs (router_id, vrrp_version, vrrp_garp_*); every other option is listed on stderr with its line. Exits 0 when a config was produced, 1 when the file cannot be read or parsed'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "demo" -d 'Live failover demo in network namespaces (needs root and iproute2): VRRP, then a cluster with a resource group'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "probe" -d 'Client-side outage probe used by the demo and the benchmarks (runs in a namespace)'
complete -c relevo -n "__fish_relevo_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c relevo -n "__fish_relevo_using_subcommand run" -s c -l config -d 'Configuration file' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c relevo -n "__fish_relevo_using_subcommand check" -s c -l config -d 'Configuration file' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c relevo -n "__fish_relevo_using_subcommand fence" -l action -d 'What to do; default: the device\'s `action` (off or reboot)' -r -f -a "off\t''
reboot\t''
on\t''
status\t''"
complete -c relevo -n "__fish_relevo_using_subcommand fence" -s c -l config -d 'Configuration file' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand fence" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c relevo -n "__fish_relevo_using_subcommand status" -s c -l config -d 'Configuration file (to find the control socket)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand status" -l socket -d 'Control socket path (overrides the one in the configuration)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand status" -l json -d 'Print the daemon\'s JSON reply as is'
complete -c relevo -n "__fish_relevo_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c relevo -n "__fish_relevo_using_subcommand events" -s c -l config -d 'Configuration file (to find the control socket)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand events" -l socket -d 'Control socket path (overrides the one in the configuration)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand events" -l follow -d 'Keep printing new events as they happen, in order'
complete -c relevo -n "__fish_relevo_using_subcommand events" -l json -d 'Print the daemon\'s JSON as is'
complete -c relevo -n "__fish_relevo_using_subcommand events" -s h -l help -d 'Print help'
complete -c relevo -n "__fish_relevo_using_subcommand standby" -s c -l config -d 'Configuration file (to find the control socket)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand standby" -l socket -d 'Control socket path (overrides the one in the configuration)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand standby" -l json -d 'Print the daemon\'s JSON as is'
complete -c relevo -n "__fish_relevo_using_subcommand standby" -s h -l help -d 'Print help'
complete -c relevo -n "__fish_relevo_using_subcommand takeover" -s c -l config -d 'Configuration file (to find the control socket)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand takeover" -l socket -d 'Control socket path (overrides the one in the configuration)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand takeover" -l force -d 'Take over even though this node is not healthy'
complete -c relevo -n "__fish_relevo_using_subcommand takeover" -l json -d 'Print the daemon\'s JSON as is'
complete -c relevo -n "__fish_relevo_using_subcommand takeover" -s h -l help -d 'Print help'
complete -c relevo -n "__fish_relevo_using_subcommand maintenance" -s c -l config -d 'Configuration file (to find the control socket)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand maintenance" -l socket -d 'Control socket path (overrides the one in the configuration)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand maintenance" -l json -d 'Print the daemon\'s JSON as is'
complete -c relevo -n "__fish_relevo_using_subcommand maintenance" -s h -l help -d 'Print help'
complete -c relevo -n "__fish_relevo_using_subcommand switchover" -l to -d 'Groups: the node it must go to (refused if another node would take it)' -r
complete -c relevo -n "__fish_relevo_using_subcommand switchover" -s c -l config -d 'Configuration file (to find the control socket)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand switchover" -l socket -d 'Control socket path (overrides the one in the configuration)' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand switchover" -l force -d 'Release a group even if no other node can take it'
complete -c relevo -n "__fish_relevo_using_subcommand switchover" -l json -d 'Print the daemon\'s JSON as is'
complete -c relevo -n "__fish_relevo_using_subcommand switchover" -s h -l help -d 'Print help'
complete -c relevo -n "__fish_relevo_using_subcommand import-keepalived" -s o -l output -d 'Write the config to this file instead of stdout' -r -F
complete -c relevo -n "__fish_relevo_using_subcommand import-keepalived" -s h -l help -d 'Print help'
complete -c relevo -n "__fish_relevo_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c relevo -n "__fish_relevo_using_subcommand probe" -l target -d 'Address to ping (IPv4: ICMP echo, IPv6: ICMPv6 echo)' -r
complete -c relevo -n "__fish_relevo_using_subcommand probe" -l interval -d 'Time between two echo requests (e.g. 1ms, 500us)' -r
complete -c relevo -n "__fish_relevo_using_subcommand probe" -l timeout -d 'A request without a reply after this long is lost' -r
complete -c relevo -n "__fish_relevo_using_subcommand probe" -l ignore-stdin -d 'Do not stop on stdin EOF (only on SIGTERM/SIGINT)'
complete -c relevo -n "__fish_relevo_using_subcommand probe" -s h -l help -d 'Print help'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "run" -d 'Run the daemon in the foreground (logs to stderr; RELEVO_LOG=debug for more)'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "check" -d 'Validate a configuration file: prints a summary and exits 0, or the errors and exits 1'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "fence" -d 'Fence a cluster node through its [[fence]] device, directly (without the daemon): test a device, or power a node off by hand. Exits 0 on success, 1 with the error'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "status" -d 'Show the running daemon\'s instances: state, master, VIPs, packet counters'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "events" -d 'The daemon\'s event history: transitions with their reasons, hook runs, operator actions (oldest first, the last 1000)'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "standby" -d 'Release everything this node holds, gracefully (VIPs kept until the next owner has them), and stay a standby until `relevo takeover`'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "takeover" -d 'Compete again after standby or a switchover (heartbeat\'s scopes: local = groups that prefer this node and every VRRP instance, foreign = the other groups, all, failback = local). Refused when this node is not healthy (no quorum, a fence pending) unless --force'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "maintenance" -d 'Maintenance: `on` hands everything over with no downtime and keeps this node out, across restarts (a flag under state_dir), until `off`'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "switchover" -d 'Planned move of one VRRP instance (this node must be its master) or group (this node must hold it); this node stays out of it until `relevo takeover`'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "import-keepalived" -d 'Convert a keepalived.conf to a Relevo config (stdout, or -o FILE): vrrp_instance (interface, virtual_router_id, priority, state, advert_int, version, nopreempt, preempt_delay, virtual_ipaddress, unicast_peer, unicast_src_ip, PASS authentication, notify scripts, garp settings, use_vmac) and global_defs (router_id, vrrp_version, vrrp_garp_*); every other option is listed on stderr with its line. Exits 0 when a config was produced, 1 when the file cannot be read or parsed'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "demo" -d 'Live failover demo in network namespaces (needs root and iproute2): VRRP, then a cluster with a resource group'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "probe" -d 'Client-side outage probe used by the demo and the benchmarks (runs in a namespace)'
complete -c relevo -n "__fish_relevo_using_subcommand help; and not __fish_seen_subcommand_from run check fence status events standby takeover maintenance switchover import-keepalived demo probe help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
