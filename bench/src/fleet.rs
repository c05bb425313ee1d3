//! The simulated users: couples of two partners, each with a phone and a watch, signed in
//! through the public API (accounts with `CreateAccount`, watches with link codes, couples
//! with invites), and the gRPC clients that act as their devices.
//!
//! Devices are numbered `4 * couple + slot`, slots being 0 = first partner's phone,
//! 1 = first partner's watch, 2 = second partner's phone, 3 = second partner's watch.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tapline_proto::v1 as pb;
use tapline_proto::v1::account_service_client::AccountServiceClient;
use tapline_proto::v1::checkin_service_client::CheckinServiceClient;
use tapline_proto::v1::event_service_client::EventServiceClient;
use tapline_proto::v1::pairing_service_client::PairingServiceClient;
use tapline_proto::v1::tap_service_client::TapServiceClient;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::target::Target;

/// Devices per couple.
pub const PER_COUPLE: usize = 4;
/// Bound on each setup call.
const CALL_PATIENCE: Duration = Duration::from_secs(30);

/// A signed-in device: its id and bearer token.
#[derive(Debug, Clone)]
pub struct DeviceCred {
    /// The server's id for it.
    pub id: String,
    /// Its bearer token.
    pub token: String,
}

/// Every device of every couple, in device-number order.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// `devices[4 * couple + slot]`.
    pub devices: Vec<DeviceCred>,
}

impl Fleet {
    /// Number of couples.
    pub fn couples(&self) -> usize {
        self.devices.len() / PER_COUPLE
    }

    /// The devices a tap from `sender` must reach, by role: the partner's phone, the partner's
    /// watch, then the sender's own other device.
    pub fn recipients(sender: usize) -> [usize; 3] {
        let base = sender - sender % PER_COUPLE;
        let slot = sender % PER_COUPLE;
        let partner_phone = (slot & 2) ^ 2;
        [
            base + partner_phone,
            base + partner_phone + 1,
            base + (slot ^ 1),
        ]
    }

    /// The devices of `sender`'s own account (its phone, then its watch): where the receipts
    /// for its taps go.
    pub fn account_devices(sender: usize) -> [usize; 2] {
        let phone = sender - sender % 2;
        [phone, phone + 1]
    }

    /// The relay's fleet: no setup, the token names the device (see [`crate::relay`]).
    pub fn synthetic(couples: usize) -> Fleet {
        let devices = (0..couples * PER_COUPLE)
            .map(|d| {
                let (c, s) = (d / PER_COUPLE, d % PER_COUPLE);
                DeviceCred {
                    id: crate::relay::device_id(c as u32, s as u8),
                    token: crate::relay::token(c as u32, s as u8),
                }
            })
            .collect();
        Fleet { devices }
    }

    /// Signs `couples` couples in on the server at `addr`, `concurrency` couples at a time.
    /// For the relay, makes the synthetic fleet instead.
    pub async fn create(
        target: Target,
        addr: SocketAddr,
        couples: usize,
        concurrency: usize,
    ) -> Result<Fleet, String> {
        if target == Target::Relay {
            return Ok(Fleet::synthetic(couples));
        }
        // A few shared connections for the calls that need no special source address.
        let shared: Vec<Channel> = {
            let mut v = Vec::new();
            for _ in 0..concurrency.clamp(1, 8) {
                v.push(connect(addr, None).await?);
            }
            v
        };
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for c in 0..couples {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let channel = shared[c % shared.len()].clone();
            tasks.spawn(async move {
                let _permit = permit;
                (c, make_couple(addr, channel, c).await)
            });
        }
        let mut slots: Vec<Option<[DeviceCred; PER_COUPLE]>> = vec![None; couples];
        while let Some(done) = tasks.join_next().await {
            let (c, couple) = done.map_err(|e| format!("setup task: {e}"))?;
            slots[c] = Some(couple.map_err(|e| format!("setting up couple {c}: {e}"))?);
        }
        Ok(Fleet {
            devices: slots.into_iter().flatten().flatten().collect(),
        })
    }
}

/// A fresh HTTP/2 connection to `addr`, from `local` when given.
pub async fn connect(addr: SocketAddr, local: Option<IpAddr>) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .local_address(local)
        .connect()
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))
}

/// Opens `n` connections to `addr`, `parallel` at a time.
pub async fn connect_many(
    addr: SocketAddr,
    n: usize,
    parallel: usize,
) -> Result<Vec<Channel>, String> {
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        tasks.spawn(async move {
            let _permit = permit;
            (i, connect(addr, None).await)
        });
    }
    let mut channels: Vec<Option<Channel>> = vec![None; n];
    while let Some(done) = tasks.join_next().await {
        let (i, channel) = done.map_err(|e| e.to_string())?;
        channels[i] = Some(channel?);
    }
    Ok(channels.into_iter().flatten().collect())
}

/// The source address for couple `c`'s link-code redemptions. The server allows 10
/// `RedeemLinkCode` attempts per client IP per 15 minutes, so each couple (2 redemptions)
/// redeems from its own loopback address in 127.0.0.0/8; everything else uses 127.0.0.1.
pub fn redeem_source(c: usize) -> IpAddr {
    let n = c as u32;
    IpAddr::V4(Ipv4Addr::new(
        127,
        (1 + n / 62_500) as u8,
        ((n / 250) % 250) as u8,
        (1 + n % 250) as u8,
    ))
}

async fn make_couple(
    addr: SocketAddr,
    channel: Channel,
    c: usize,
) -> Result<[DeviceCred; PER_COUPLE], String> {
    let redeem = connect(addr, Some(redeem_source(c))).await?;
    let a = create_account(
        &channel,
        &format!("A{c}"),
        "Europe/Paris",
        pb::Platform::Ios,
    )
    .await?;
    let a_watch = link_watch(&channel, &redeem, &a, pb::Platform::Watchos).await?;
    let b = create_account(
        &channel,
        &format!("B{c}"),
        "America/New_York",
        pb::Platform::Android,
    )
    .await?;
    let b_watch = link_watch(&channel, &redeem, &b, pb::Platform::WearOs).await?;
    let code = within(
        PairingServiceClient::new(authed(&channel, &a.token)?)
            .create_invite(pb::CreateInviteRequest {}),
    )
    .await?
    .code;
    within(
        PairingServiceClient::new(authed(&channel, &b.token)?)
            .accept_invite(pb::AcceptInviteRequest { code }),
    )
    .await?;
    Ok([a, a_watch, b, b_watch])
}

async fn create_account(
    channel: &Channel,
    name: &str,
    zone: &str,
    platform: pb::Platform,
) -> Result<DeviceCred, String> {
    let resp = within(AccountServiceClient::new(channel.clone()).create_account(
        pb::CreateAccountRequest {
            display_name: name.into(),
            time_zone: zone.into(),
            device: Some(pb::DeviceInfo {
                kind: pb::DeviceKind::Phone as i32,
                platform: platform as i32,
                name: format!("{name}'s phone"),
            }),
        },
    ))
    .await?;
    Ok(DeviceCred {
        id: resp.device.map(|d| d.device_id).unwrap_or_default(),
        token: resp.token,
    })
}

async fn link_watch(
    channel: &Channel,
    redeem: &Channel,
    phone: &DeviceCred,
    platform: pb::Platform,
) -> Result<DeviceCred, String> {
    let code = within(
        AccountServiceClient::new(authed(channel, &phone.token)?)
            .create_link_code(pb::CreateLinkCodeRequest {}),
    )
    .await?
    .code;
    let resp = within(AccountServiceClient::new(redeem.clone()).redeem_link_code(
        pb::RedeemLinkCodeRequest {
            code,
            device: Some(pb::DeviceInfo {
                kind: pb::DeviceKind::Watch as i32,
                platform: platform as i32,
                name: "watch".into(),
            }),
        },
    ))
    .await?;
    Ok(DeviceCred {
        id: resp.device.map(|d| d.device_id).unwrap_or_default(),
        token: resp.token,
    })
}

/// Awaits a unary call for at most [`CALL_PATIENCE`]; no answer in time is
/// `DeadlineExceeded`.
pub async fn patient<T>(
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(CALL_PATIENCE, call).await {
        Ok(answer) => answer.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {}s",
            CALL_PATIENCE.as_secs()
        ))),
    }
}

/// [`patient`], with the failure as text (for set-up errors).
async fn within<T>(
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, String> {
    patient(call)
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// A connection that presents one device's token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// `channel` presenting `token`.
pub fn authed(channel: &Channel, token: &str) -> Result<Authed, String> {
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| "a token that is not valid header text".to_owned())?;
    Ok(InterceptedService::new(channel.clone(), Bearer(value)))
}

/// The clients one device uses during a run.
#[derive(Clone)]
pub struct DeviceClients {
    /// For `SendTap` and `ReportTap`.
    pub taps: TapServiceClient<Authed>,
    /// For `Subscribe` and `AckEvents`.
    pub events: EventServiceClient<Authed>,
    /// For `AskPartner` and `AnswerCheckin`.
    pub checkins: CheckinServiceClient<Authed>,
}

impl DeviceClients {
    /// Clients for `device` over `channel`.
    pub fn new(channel: &Channel, device: &DeviceCred) -> Result<DeviceClients, String> {
        let authed = authed(channel, &device.token)?;
        Ok(DeviceClients {
            taps: TapServiceClient::new(authed.clone()),
            events: EventServiceClient::new(authed.clone()),
            checkins: CheckinServiceClient::new(authed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tap_reaches_the_partners_two_devices_and_the_senders_other_one() {
        // Couple 2: devices 8 (A phone), 9 (A watch), 10 (B phone), 11 (B watch).
        assert_eq!(Fleet::recipients(8), [10, 11, 9]);
        assert_eq!(Fleet::recipients(9), [10, 11, 8]);
        assert_eq!(Fleet::recipients(10), [8, 9, 11]);
        assert_eq!(Fleet::recipients(11), [8, 9, 10]);
        assert_eq!(Fleet::account_devices(9), [8, 9]);
        assert_eq!(Fleet::account_devices(10), [10, 11]);
    }

    #[test]
    fn each_couple_redeems_from_its_own_loopback_address() {
        let mut seen = std::collections::HashSet::new();
        for c in 0..200_000 {
            let ip = redeem_source(c);
            assert!(ip.is_loopback(), "{ip}");
            assert_ne!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
            assert!(seen.insert(ip), "{ip} twice");
        }
    }

    #[test]
    fn the_synthetic_fleet_has_four_devices_per_couple() {
        let fleet = Fleet::synthetic(3);
        assert_eq!(fleet.couples(), 3);
        assert_eq!(fleet.devices[5].token, crate::relay::token(1, 1));
    }
}
