//! TCP_NODELAY on sqlx's Postgres connections.
//!
//! sqlx 0.9.0 opens its TCP sockets without TCP_NODELAY (transact-rs/sqlx
//! issue #4335; fixed by PR #4336, not yet released). Nagle's algorithm then
//! holds a query's last small write until Postgres acknowledges the previous
//! one, and Postgres delays that ACK by 40 ms or more: about 1 query in 100
//! over TCP took 40–80 ms instead of under a millisecond. Remove this module
//! once the pin moves to a sqlx release with the fix.
//!
//! sqlx does not hand out its socket, so a new connection finds its own: it
//! asks Postgres for the connection's two ports, looks the established TCP
//! socket with those ports up in `/proc/self/net/tcp{,6}`, and finds which of
//! this process's descriptors is that socket by its inode. The connection
//! is borrowed exclusively meanwhile, so the descriptor cannot be closed
//! under us. Connections over a Unix socket, through address translation
//! or off Linux are left as they are.

use std::io;

use sqlx::PgConnection;

/// Turns TCP_NODELAY on for `conn`'s socket (see the module docs). Never
/// fails the connection: a socket that cannot be found is logged and left.
pub async fn enable(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let Some(ports) = ports(conn).await? else {
        return Ok(());
    };
    match with_socket(ports, |socket| socket.set_tcp_nodelay(true)) {
        Ok(Some(())) => {}
        Ok(None) => tracing::debug!(?ports, "Postgres socket not found; TCP_NODELAY left off"),
        Err(err) => tracing::warn!(error = %err, "could not set TCP_NODELAY on a Postgres socket"),
    }
    Ok(())
}

/// Whether `conn`'s socket has TCP_NODELAY; `None` when it is not a TCP
/// socket this process can find.
pub async fn is_enabled(conn: &mut PgConnection) -> Result<Option<bool>, sqlx::Error> {
    let Some(ports) = ports(conn).await? else {
        return Ok(None);
    };
    Ok(with_socket(ports, |socket| socket.tcp_nodelay())?)
}

/// (client port, server port) of the connection as Postgres sees them;
/// `None` over a Unix socket.
async fn ports(conn: &mut PgConnection) -> Result<Option<(u16, u16)>, sqlx::Error> {
    let (client, server): (Option<i32>, Option<i32>) =
        sqlx::query_as("SELECT inet_client_port(), inet_server_port()")
            .fetch_one(conn)
            .await?;
    Ok(client
        .zip(server)
        .and_then(|(c, s)| Some((u16::try_from(c).ok()?, u16::try_from(s).ok()?))))
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn with_socket<T>(
    (local, remote): (u16, u16),
    f: impl FnOnce(socket2::SockRef<'_>) -> io::Result<T>,
) -> io::Result<Option<T>> {
    use std::os::fd::BorrowedFd;

    let mut inodes = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(established_inodes(&text, local, remote));
        }
    }
    if inodes.is_empty() {
        return Ok(None);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let inode = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok());
        let fd = entry.file_name().to_str().and_then(|n| n.parse().ok());
        if let (Some(inode), Some(fd)) = (inode, fd)
            && inodes.contains(&inode)
        {
            found.push(fd);
        }
    }
    // Exactly one descriptor, or it is not certain which one is ours.
    let [fd] = found[..] else {
        return Ok(None);
    };
    // SAFETY: `fd` is the only socket of this process with the connection's
    // two ports: the socket of the connection the caller holds `&mut` to, so
    // it stays open for this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    f(socket2::SockRef::from(&fd)).map(Some)
}

#[cfg(not(target_os = "linux"))]
fn with_socket<T>(
    _ports: (u16, u16),
    _f: impl FnOnce(socket2::SockRef<'_>) -> io::Result<T>,
) -> io::Result<Option<T>> {
    Ok(None)
}

/// Inodes of the established sockets from port `local` to port `remote` in
/// a `/proc/net/tcp` table.
fn established_inodes(table: &str, local: u16, remote: u16) -> impl Iterator<Item = u64> + '_ {
    const ESTABLISHED: &str = "01";
    let port = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).filter_map(move |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let matches = fields.len() > 9
            && port(fields[1]) == Some(local)
            && port(fields[2]) == Some(remote)
            && fields[3] == ESTABLISHED;
        matches.then(|| fields[9].parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 20001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 30002 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1538 0100007F:D431 01 00000000:00000000 00:00000000 00000000   104        0 30003 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:D432 0100007F:1538 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
";

    #[test]
    fn only_the_established_socket_from_the_client_port_to_the_server_port_matches() {
        // 0xD431 = 54321 → 0x1538 = 5432; the listener, the server's end and
        // a TIME_WAIT socket do not match.
        assert_eq!(
            established_inodes(TABLE, 54321, 5432).collect::<Vec<_>>(),
            [30002]
        );
        assert_eq!(established_inodes(TABLE, 54322, 5432).count(), 0);
    }
}
