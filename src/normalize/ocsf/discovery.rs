//! Discovery family: Device Inventory Info (5001) for DeviceInfo and DeviceNetworkInfo — the
//! sensor's periodic report of what the device is and which network adapters it has.

use super::{device, f, Class, Conv, Event, Field, Mapped};

const INVENTORY_INFO: Class = Class {
    uid: 5001,
    name: "Device Inventory Info",
    category_uid: 5,
    category_name: "Discovery",
};

/// DeviceInfo: the device itself (`DeviceId`, `DeviceName` and `MachineGroup` are placed by
/// the columns every row shares).
const DEVICE_INFO: &[Field] = &[
    f("OSPlatform", "device.os.name", Conv::Str),
    f("OSVersion", "device.os.version", Conv::Str),
    f("OSBuild", "device.os.build", Conv::Str),
    f("Model", "device.model", Conv::Str),
    f("Vendor", "device.vendor_name", Conv::Str),
    f("AadDeviceId", "device.uid_alt", Conv::Str),
];

/// DeviceNetworkInfo: one network adapter.
const ADAPTER: &[Field] = &[
    f(
        "NetworkAdapterName",
        "device.network_interfaces.0.name",
        Conv::Str,
    ),
    f("MacAddress", "device.network_interfaces.0.mac", Conv::Str),
];

/// `OSPlatform` → `os.type_id` and caption.
fn os_type(platform: &str) -> (u32, &'static str) {
    let p = platform.to_ascii_lowercase();
    if p.starts_with("windows") {
        (100, "Windows")
    } else if p.starts_with("linux") || p == "ubuntu" || p == "redhat" || p == "centos" {
        (200, "Linux")
    } else if p.starts_with("android") {
        (201, "Android")
    } else if p.starts_with("macos") || p == "mac" {
        (300, "macOS")
    } else if p.starts_with("ios") {
        (301, "iOS")
    } else {
        (99, "Other")
    }
}

/// `NetworkAdapterType` → `network_interfaces[].type_id` and caption (the .NET
/// `NetworkInterfaceType` names MDE writes).
fn adapter_type(t: Option<&str>) -> (u32, &'static str) {
    match t {
        Some(t) if t.starts_with("Ethernet") || t == "GigabitEthernet" => (1, "Wired"),
        Some("Wireless80211") => (2, "Wireless"),
        Some("Wwanpp" | "Wwanpp2") => (3, "Mobile"),
        Some("Tunnel") => (4, "Tunnel"),
        Some(_) => (99, "Other"),
        None => (0, "Unknown"),
    }
}

/// DeviceInfo → Device Inventory Info (Log).
pub(super) fn device_info(mut ev: Event) -> Mapped {
    // `cpu_bits` is an integer; MDE writes `64-bit` / `32-bit`.
    let bits = match ev.col_str("OSArchitecture") {
        Some("64-bit") => Some(64),
        Some("32-bit") => Some(32),
        _ => None,
    };
    let platform = ev.col_str("OSPlatform").map(str::to_string);
    ev.apply(DEVICE_INFO);
    if let Some(b) = bits {
        ev.take_col("OSArchitecture", "device.os.cpu_bits");
        ev.set("device.os.cpu_bits", b.into());
    }
    if let Some(p) = platform {
        let (id, caption) = os_type(&p);
        ev.set("device.os.type_id", id.into());
        ev.set("device.os.type", caption.into());
    }
    device(&mut ev);
    ev.classify(INVENTORY_INFO, 1, "Log", 1);
    Some(ev)
}

/// DeviceNetworkInfo → Device Inventory Info (Log), the adapter as the device's one
/// `network_interfaces` entry (its addresses, DNS servers and gateways stay in `unmapped`:
/// lists of objects OCSF's interface has one address for).
pub(super) fn network_info(mut ev: Event) -> Mapped {
    let kind = ev.col_str("NetworkAdapterType").map(str::to_string);
    ev.apply(ADAPTER);
    if ev.get("device.network_interfaces.0").is_some() {
        let (id, caption) = adapter_type(kind.as_deref());
        if kind.is_some() {
            ev.take_col("NetworkAdapterType", "device.network_interfaces.0.type_id");
        }
        ev.set("device.network_interfaces.0.type_id", id.into());
        ev.set("device.network_interfaces.0.type", caption.into());
    }
    device(&mut ev);
    ev.classify(INVENTORY_INFO, 1, "Log", 1);
    Some(ev)
}
