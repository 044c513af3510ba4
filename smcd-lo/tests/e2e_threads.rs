//! End to end on the loopback device with the blocking driver in two
//! threads (the shape of a unikernel pair, and of `examples/inproc_echo`):
//! an echo server and a client that sends and reads back at the same time,
//! in copy and nocopy mode; every DMB is given back afterwards.

mod e2e_util;

use e2e_util::{Lo, assert_all_given_back, config, loopback};
use embedded_hal_mock::eh1::delay::StdSleep;
use smcd_core::blocking::Blocking;
use smcd_core::conn::SendMode;
use smcd_core::endpoint::{EndpointError, Host, Pipe, Transport};

const BYTES: usize = 3 << 20;

/// Echo through `dev` with one host for both ends (client and server share
/// the host's link groups, as two sockets of one Linux host do).
fn echo(dev: &Lo, nocopy: bool) {
    let host = Host::<_, 4>::with_config(config(64 * 1024), dev);
    let pipe = Pipe::<1024>::new();
    let (a, b) = pipe.ends();
    let data: Vec<u8> = (0..BYTES).map(|i| (i * 31 % 257) as u8).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut server = Blocking::accept(&host, b, StdSleep::new()).unwrap();
            let mut buf = vec![0u8; 50_000];
            loop {
                let n = server.recv(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                server.send_all(&buf[..n]).unwrap();
            }
            assert_eq!(server.close(), Ok(true));
        });
        let mut client = Blocking::connect(&host, a, StdSleep::new()).unwrap();
        let Transport::SmcD(e) = client.transport() else {
            panic!("{:?}", client.transport())
        };
        let mode = if nocopy {
            SendMode::NoCopy
        } else {
            SendMode::Copy
        };
        assert_eq!(e.mode, mode);
        assert_eq!(client.endpoint().connection().map(|c| c.mode()), Some(mode));
        let (mut sent, mut echoed) = (0, Vec::with_capacity(BYTES));
        let mut buf = vec![0u8; 70_000];
        while echoed.len() < BYTES {
            let ep = client.endpoint_mut();
            let mut progressed = false;
            if sent < BYTES {
                match ep.send(&data[sent..(sent + 100_000).min(BYTES)]) {
                    Ok(n) => (sent, progressed) = (sent + n, true),
                    Err(EndpointError::WouldBlock) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            match ep.recv(&mut buf) {
                Ok(n) => {
                    assert!(n > 0, "EOF too early");
                    echoed.extend_from_slice(&buf[..n]);
                    progressed = true;
                }
                Err(EndpointError::WouldBlock) => {}
                Err(e) => panic!("{e}"),
            }
            client.wait(progressed).unwrap();
        }
        assert!(echoed == data, "echo differs");
        assert_eq!(client.close(), Ok(true));
    });
    assert_eq!(host.groups().in_use(), 0);
    assert_all_given_back(dev, &host);
}

#[test]
fn copy_mode_echo_in_two_threads() {
    let dev = loopback::<64>(1);
    dev.set_nocopy(false);
    echo(&dev, false);
    assert_eq!(dev.stats().dmbs_in_use, 0);
}

#[test]
fn nocopy_mode_echo_in_two_threads() {
    let lo = loopback::<64>(2);
    echo(&lo, true);
    assert_eq!(lo.stats().dmbs_in_use, 0);
}
