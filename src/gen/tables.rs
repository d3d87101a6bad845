//! One writer per table: each appends the members of `properties` (without braces) for one row.
//! Column sets follow the Advanced Hunting schema reference and real export captures.

use super::pools::{self, Os, PROCS};
use super::*;

/// The event context most Device* rows share: which device, account and initiating process.
struct Ev {
    dev: usize,
    user: usize,
    /// Initiating process (index into `PROCS`).
    ip: usize,
    /// Its parent.
    parent: usize,
    ip_pid: i64,
    ip_created: i64,
    t: i64,
}

const SYSTEM_SID: &str = "S-1-5-18";

impl Generator {
    /// Fractional digits of a `Timestamp`: mostly 7 or 6 (trailing zeros trimmed), sometimes 3,
    /// occasionally none.
    pub(super) fn digits(&mut self) -> usize {
        match self.rng.below(20) {
            0 => 0,
            1 | 2 => 3,
            3..=8 => 6,
            9 => 1 + self.rng.below(5) as usize,
            _ => 7,
        }
    }

    fn ev(&mut self, t: i64) -> Ev {
        let dev = self.rng.index(self.devices.len());
        let os = self.devices[dev].os as usize;
        let ip = *self.rng.pick(&self.by_os[os]);
        let parent = *self.rng.pick(&self.by_os[os]);
        let user = if self.rng.chance(80) {
            self.devices[dev].user
        } else {
            self.rng.index(self.users.len())
        };
        let ip_created = t - self.rng.range(10_000, 7200 * TICKS_PER_SEC as u64) as i64;
        Ev {
            dev,
            user,
            ip,
            parent,
            ip_pid: self.rng.range(4, 60_000) as i64,
            ip_created,
            t,
        }
    }

    /// An event on a Windows device (device 0 always is one).
    fn ev_windows(&mut self, t: i64) -> Ev {
        for _ in 0..8 {
            let e = self.ev(t);
            if self.devices[e.dev].os == Os::Windows {
                return e;
            }
        }
        let mut e = self.ev(t);
        e.dev = 0;
        e.ip = *self.rng.pick(&self.by_os[Os::Windows as usize]);
        e.parent = *self.rng.pick(&self.by_os[Os::Windows as usize]);
        e
    }

    /// `Timestamp`, `DeviceId`, `DeviceName` and `ActionType`.
    fn device_head(&mut self, o: &mut Vec<u8>, e: &Ev, action: &str) {
        let d = self.digits();
        ts(o, "Timestamp", e.t, d);
        let dev = &self.devices[e.dev];
        s(o, "DeviceId", &dev.id);
        s(o, "DeviceName", &dev.name);
        s(o, "ActionType", action);
    }

    /// `ReportId`: a per-device counter, or (as on many real rows) a number in the range of .NET
    /// ticks, far above 2^53.
    pub(super) fn report_id(&mut self, o: &mut Vec<u8>, dev: usize, t: i64, big: bool) {
        if big || self.rng.chance(50) {
            int(
                o,
                "ReportId",
                DOTNET_EPOCH_TICKS + t + self.rng.below(10_000) as i64,
            );
        } else {
            let d = &mut self.devices[dev];
            d.counter += 1 + self.rng.below(4);
            int(o, "ReportId", d.counter as i64);
        }
    }

    pub(super) fn machine_group(&self, o: &mut Vec<u8>, dev: usize) {
        os(o, "MachineGroup", self.devices[dev].group);
    }

    fn app_guard(&mut self, o: &mut Vec<u8>) {
        if self.rng.chance(50) {
            s(o, "AppGuardContainerId", "");
        } else {
            null(o, "AppGuardContainerId");
        }
    }

    /// The account an executable runs as: SYSTEM/root for system processes, else `user`.
    fn account(&self, proc_: usize, dev: usize, user: usize) -> (&str, &str, &str, Option<&User>) {
        let d = &self.devices[dev];
        if PROCS[proc_].integrity == "System" || PROCS[proc_].file == "launchd" {
            match d.os {
                Os::Windows => ("nt authority", "system", SYSTEM_SID, None),
                _ => (short_name(&d.name), "root", SYSTEM_SID, None),
            }
        } else {
            let u = &self.users[user];
            let domain = match d.os {
                Os::Windows => u.domain,
                _ => short_name(&d.name),
            };
            (domain, u.name, u.sid.as_str(), Some(u))
        }
    }

    /// Expands a process's command line into `self.tmp`.
    fn cmdline(&mut self, proc_: usize, user: usize) {
        self.tmp.clear();
        let file = *self.rng.pick(pools::FILES);
        let n = self.rng.range(1, 99_999);
        expand(
            &mut self.tmp,
            PROCS[proc_].cmd,
            self.users[user].name,
            file,
            n,
        );
    }

    /// The `InitiatingProcess*` block.
    fn initiating(&mut self, o: &mut Vec<u8>, e: &Ev, signer: bool) {
        let p = &PROCS[e.ip];
        let pd = &self.procs[e.ip];
        let (domain, name, sid, u) = self.account(e.ip, e.dev, e.user);
        s(o, "InitiatingProcessAccountDomain", domain);
        s(o, "InitiatingProcessAccountName", name);
        s(o, "InitiatingProcessAccountSid", sid);
        let windows = p.os == Os::Windows;
        match u {
            Some(u) if windows => {
                s(o, "InitiatingProcessAccountUpn", &u.upn);
                s(o, "InitiatingProcessAccountObjectId", &u.object_id);
            }
            _ => {
                null(o, "InitiatingProcessAccountUpn");
                null(o, "InitiatingProcessAccountObjectId");
            }
        }
        s(o, "InitiatingProcessMD5", &pd.md5);
        s(o, "InitiatingProcessSHA1", &pd.sha1);
        s(o, "InitiatingProcessSHA256", &pd.sha256);
        s(o, "InitiatingProcessFolderPath", &pd.lower_path);
        s(o, "InitiatingProcessFileName", p.file);
        int(o, "InitiatingProcessFileSize", p.size as i64);
        version_info(o, "InitiatingProcess", p.version);
        int(o, "InitiatingProcessId", e.ip_pid);
        self.cmdline(e.ip, e.user);
        sb(o, "InitiatingProcessCommandLine", &self.tmp);
        let d = self.digits();
        ts(o, "InitiatingProcessCreationTime", e.ip_created, d);
        if windows {
            s(o, "InitiatingProcessIntegrityLevel", p.integrity);
            s(o, "InitiatingProcessTokenElevation", elevation(p.integrity));
        } else {
            null(o, "InitiatingProcessIntegrityLevel");
            s(o, "InitiatingProcessTokenElevation", "None");
        }
        int(
            o,
            "InitiatingProcessParentId",
            self.rng.range(1, 20_000) as i64,
        );
        s(o, "InitiatingProcessParentFileName", PROCS[e.parent].file);
        let back = self.rng.range(10_000, 86_400 * TICKS_PER_SEC as u64) as i64;
        let d = self.digits();
        ts(
            o,
            "InitiatingProcessParentCreationTime",
            e.ip_created - back,
            d,
        );
        if signer {
            s(
                o,
                "InitiatingProcessSignerType",
                if windows { "OsVendor" } else { "ThirdParty" },
            );
            s(o, "InitiatingProcessSignatureStatus", "Valid");
        }
        int(
            o,
            "InitiatingProcessLogonId",
            self.rng.range(0, 5_000_000) as i64,
        );
        if windows {
            int(o, "InitiatingProcessSessionId", self.rng.below(4) as i64);
        } else {
            null(o, "InitiatingProcessSessionId");
        }
        if self.rng.chance(7) {
            boolean(o, "IsInitiatingProcessRemoteSession", true);
            s(
                o,
                "InitiatingProcessRemoteSessionDeviceName",
                "jump-host-01",
            );
            s(o, "InitiatingProcessRemoteSessionIP", "10.20.0.15");
        } else {
            boolean(o, "IsInitiatingProcessRemoteSession", false);
            null(o, "InitiatingProcessRemoteSessionDeviceName");
            null(o, "InitiatingProcessRemoteSessionIP");
        }
        if windows {
            key(o, "InitiatingProcessUniqueId");
            o.push(b'"');
            o.extend_from_slice(
                itoa::Buffer::new()
                    .format(13_510_798_882_000_000 + self.rng.below(1_000_000_000))
                    .as_bytes(),
            );
            o.push(b'"');
        } else {
            s(o, "InitiatingProcessUniqueId", "0");
        }
    }

    /// Writes the inner JSON in `self.inner` as a JSON-in-string column.
    fn flush_inner(&mut self, o: &mut Vec<u8>, k: &str) {
        sb(o, k, &self.inner);
    }

    /// POSIX details the macOS/Linux sensor puts into `AdditionalFields`.
    fn posix_fields(&mut self, e: &Ev) {
        let (domain, name, _, _) = self.account(e.ip, e.dev, e.user);
        let (domain, name) = (domain.to_string(), name.to_string());
        let uid = if name == "root" {
            0
        } else {
            500 + e.user as i64
        };
        let i = &mut self.inner;
        i.clear();
        i.push(b'{');
        key(i, "InitiatingProcessPosixEffectiveUser");
        i.push(b'{');
        s(i, "Name", &name);
        s(i, "DomainName", &domain);
        int(i, "LogonId", 0);
        int(i, "PosixUserId", uid);
        key(i, "PrimaryPosixGroup");
        i.push(b'{');
        s(i, "Name", if uid == 0 { "wheel" } else { "staff" });
        int(i, "PosixGroupId", if uid == 0 { 0 } else { 20 });
        i.extend_from_slice(b"}}");
        int(i, "InitiatingProcessPosixProcessGroupId", e.ip_pid);
        int(i, "InitiatingProcessPosixSessionId", e.ip_pid);
        s(
            i,
            "InitiatingProcessCurrentWorkingDirectory",
            &format!("/home/{name}/Документы"),
        );
        key(i, "InitiatingProcessPosixFilePermissions");
        i.extend_from_slice(br#"["OthersExecute","OthersRead","GroupExecute","GroupRead","UserExecute","UserWrite","UserRead","UserAll"]"#);
        i.push(b'}');
    }

    pub(super) fn device_process_events(&mut self, o: &mut Vec<u8>, t: i64) {
        let e = self.ev(t);
        self.device_head(o, &e, "ProcessCreated");
        let os_ = self.devices[e.dev].os as usize;
        let child = *self.rng.pick(&self.by_os[os_]);
        let p = &PROCS[child];
        let pd = &self.procs[child];
        s(o, "FileName", p.file);
        s(o, "FolderPath", p.path);
        s(o, "SHA1", &pd.sha1);
        s(o, "SHA256", &pd.sha256);
        s(o, "MD5", &pd.md5);
        int(o, "FileSize", p.size as i64);
        version_info(o, "Process", p.version);
        int(o, "ProcessId", self.rng.range(4, 60_000) as i64);
        self.cmdline(child, e.user);
        sb(o, "ProcessCommandLine", &self.tmp);
        let windows = p.os == Os::Windows;
        if windows {
            s(o, "ProcessIntegrityLevel", p.integrity);
            s(o, "ProcessTokenElevation", elevation(p.integrity));
        } else {
            null(o, "ProcessIntegrityLevel");
            s(o, "ProcessTokenElevation", "None");
        }
        let d = self.digits();
        ts(o, "ProcessCreationTime", t, d);
        let (domain, name, sid, u) = self.account(child, e.dev, e.user);
        s(o, "AccountDomain", domain);
        s(o, "AccountName", name);
        s(o, "AccountSid", sid);
        match u {
            Some(u) if windows => {
                s(o, "AccountUpn", &u.upn);
                s(o, "AccountObjectId", &u.object_id);
            }
            _ => {
                null(o, "AccountUpn");
                null(o, "AccountObjectId");
            }
        }
        int(o, "LogonId", self.rng.range(0, 5_000_000) as i64);
        self.initiating(o, &e, true);
        self.report_id(o, e.dev, t, false);
        self.app_guard(o);
        if !windows {
            self.posix_fields(&e);
            self.flush_inner(o, "AdditionalFields");
        } else if self.rng.chance(30) {
            s(o, "AdditionalFields", "[]");
        } else {
            null(o, "AdditionalFields");
        }
        if windows {
            int(o, "CreatedProcessSessionId", self.rng.below(4) as i64);
        } else {
            null(o, "CreatedProcessSessionId");
        }
        boolean(o, "IsProcessRemoteSession", false);
        null(o, "ProcessRemoteSessionDeviceName");
        null(o, "ProcessRemoteSessionIP");
        key(o, "ProcessUniqueId");
        o.push(b'"');
        o.extend_from_slice(
            itoa::Buffer::new()
                .format(13_510_798_882_000_000 + self.rng.below(1_000_000_000))
                .as_bytes(),
        );
        o.push(b'"');
        self.machine_group(o, e.dev);
    }

    pub(super) fn device_network_events(&mut self, o: &mut Vec<u8>, t: i64) {
        const ACTIONS: &[&str] = &[
            "ConnectionSuccess",
            "ConnectionSuccess",
            "ConnectionSuccess",
            "ConnectionRequest",
            "ConnectionFailed",
            "InboundConnectionAccepted",
            "ListeningConnectionCreated",
            "DnsConnectionInspected",
            "HttpConnectionInspected",
            "SslConnectionInspected",
            "NetworkSignatureInspected",
        ];
        let e = self.ev(t);
        let action = *self.rng.pick(ACTIONS);
        self.device_head(o, &e, action);
        let url = *self.rng.pick(pools::REMOTE_URLS);
        let remote_ip = format!(
            "{}.{}.{}.{}",
            self.rng.range(13, 223),
            self.rng.below(256),
            self.rng.below(256),
            self.rng.range(1, 255)
        );
        let inbound = action == "InboundConnectionAccepted";
        let listening = action == "ListeningConnectionCreated";
        if listening {
            s(o, "RemoteIP", "0.0.0.0");
            int(o, "RemotePort", 0);
            s(o, "RemoteUrl", "");
        } else {
            s(o, "RemoteIP", &remote_ip);
            let port = *self.rng.pick(&[443, 443, 443, 80, 53, 445, 8443, 3389]);
            int(
                o,
                "RemotePort",
                if inbound {
                    self.rng.range(49152, 65535) as i64
                } else {
                    port
                },
            );
            if inbound || self.rng.chance(30) {
                s(o, "RemoteUrl", "");
            } else {
                s(o, "RemoteUrl", url);
            }
        }
        let local_ip = self.devices[e.dev].local_ip.clone();
        s(o, "LocalIP", &local_ip);
        int(
            o,
            "LocalPort",
            if inbound {
                3389
            } else {
                self.rng.range(49152, 65535) as i64
            },
        );
        s(
            o,
            "Protocol",
            if self.rng.chance(90) { "Tcp" } else { "Udp" },
        );
        s(o, "LocalIPType", "Private");
        s(
            o,
            "RemoteIPType",
            if listening { "Reserved" } else { "Public" },
        );
        self.initiating(o, &e, false);
        self.report_id(o, e.dev, t, false);
        self.app_guard(o);
        match action {
            "DnsConnectionInspected" => {
                let i = &mut self.inner;
                i.clear();
                i.push(b'{');
                s(i, "direction", "Out");
                s(i, "query", url);
                s(i, "qtype_name", "A");
                s(i, "rcode_name", "NOERROR");
                // A JSON-in-string inside the JSON-in-string, as the export writes it.
                s(i, "answers", &format!("[\"{remote_ip}\"]"));
                s(i, "TTLs", "[300.0]");
                i.push(b'}');
            }
            "HttpConnectionInspected" => {
                let i = &mut self.inner;
                i.clear();
                i.push(b'{');
                s(i, "direction", "Out");
                s(i, "host", url);
                s(i, "method", "GET");
                s(i, "uri", "/api/v1/suche?q=gr%C3%BC%C3%9Fe");
                s(i, "status_code", "200");
                s(i, "user_agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)");
                s(i, "tags", "[]");
                i.push(b'}');
            }
            "SslConnectionInspected" => {
                let i = &mut self.inner;
                i.clear();
                i.push(b'{');
                s(i, "direction", "Out");
                s(i, "version", "TLSv13");
                s(i, "server_name", url);
                s(i, "established", "true");
                s(i, "cipher", "TLS_AES_256_GCM_SHA384");
                i.push(b'}');
            }
            "NetworkSignatureInspected" => {
                let i = &mut self.inner;
                i.clear();
                i.push(b'{');
                s(i, "SignatureName", "HTTP_Server");
                s(i, "SignatureMatchedContent", "%05%A2%01%0C");
                i.push(b'}');
            }
            _ => {
                if PROCS[e.ip].os != Os::Windows {
                    self.posix_fields(&e);
                } else {
                    self.inner.clear();
                }
            }
        }
        if self.inner.is_empty() {
            null(o, "AdditionalFields");
        } else if action.ends_with("Inspected") && self.rng.chance(25) {
            // Some rows carry AdditionalFields as a native object (platform facts §1).
            key(o, "AdditionalFields");
            o.extend_from_slice(&self.inner);
        } else {
            self.flush_inner(o, "AdditionalFields");
        }
        self.machine_group(o, e.dev);
    }

    pub(super) fn device_file_events(&mut self, o: &mut Vec<u8>, t: i64) {
        const ACTIONS: &[&str] = &[
            "FileCreated",
            "FileCreated",
            "FileModified",
            "FileRenamed",
            "FileDeleted",
        ];
        let e = self.ev(t);
        let action = *self.rng.pick(ACTIONS);
        self.device_head(o, &e, action);
        let file = *self.rng.pick(pools::FILES);
        let user = self.users[e.user].name;
        let folder = match self.devices[e.dev].os {
            Os::Windows => format!(r"C:\Users\{user}\Downloads\{file}"),
            Os::Mac => format!("/Users/{user}/Downloads/{file}"),
            Os::Linux => format!("/home/{user}/Downloads/{file}"),
        };
        s(o, "FileName", file);
        s(o, "FolderPath", &folder);
        hex(o, &mut self.rng, "SHA1", 40);
        hex(o, &mut self.rng, "SHA256", 64);
        hex(o, &mut self.rng, "MD5", 32);
        if action == "FileCreated" && self.rng.chance(30) {
            s(
                o,
                "FileOriginUrl",
                "https://contoso.sharepoint.com/sites/Vertrieb/Freigegebene Dokumente/Angebot.pdf",
            );
            s(o, "FileOriginReferrerUrl", "https://outlook.office.com/");
            s(o, "FileOriginIP", "52.108.8.254");
        } else {
            null(o, "FileOriginUrl");
            null(o, "FileOriginReferrerUrl");
            null(o, "FileOriginIP");
        }
        if action == "FileRenamed" {
            s(o, "PreviousFolderPath", &folder);
            s(o, "PreviousFileName", "Neues Dokument.tmp");
        } else {
            s(o, "PreviousFolderPath", "");
            s(o, "PreviousFileName", "");
        }
        int(o, "FileSize", self.rng.range(0, 40_000_000) as i64);
        self.initiating(o, &e, false);
        s(o, "RequestProtocol", "Local");
        null(o, "RequestSourceIP");
        null(o, "RequestSourcePort");
        let (domain, name, sid, _) = self.account(e.ip, e.dev, e.user);
        s(o, "RequestAccountName", name);
        s(o, "RequestAccountDomain", domain);
        s(o, "RequestAccountSid", sid);
        null(o, "ShareName");
        null(o, "SensitivityLabel");
        null(o, "SensitivitySubLabel");
        null(o, "IsAzureInfoProtectionApplied");
        self.report_id(o, e.dev, t, false);
        self.app_guard(o);
        let ft = if file.ends_with(".msi") {
            "PortableExecutable"
        } else {
            "Unknown"
        };
        s(o, "AdditionalFields", &format!("{{\"FileType\":\"{ft}\"}}"));
        self.machine_group(o, e.dev);
    }

    pub(super) fn device_image_load_events(&mut self, o: &mut Vec<u8>, t: i64) {
        const DLLS: &[(&str, &str, u64)] = &[
            ("samlib.dll", r"C:\Windows\System32\samlib.dll", 176_128),
            ("amsi.dll", r"C:\Windows\System32\amsi.dll", 98_304),
            (
                "clr.dll",
                r"C:\Windows\Microsoft.NET\Framework64\v4.0.30319\clr.dll",
                10_874_320,
            ),
            (
                "vcruntime140.dll",
                r"C:\Program Files\Microsoft Office\root\vfs\System\vcruntime140.dll",
                120_400,
            ),
            ("winhttp.dll", r"C:\Windows\System32\winhttp.dll", 1_015_808),
            (
                "übersetzer_x64.dll",
                r"C:\Program Files\Contoso\Übersetzer\übersetzer_x64.dll",
                2_318_336,
            ),
        ];
        // Image loads are a Windows affair.
        let e = self.ev_windows(t);
        self.device_head(o, &e, "ImageLoaded");
        let &(name, path, size) = self.rng.pick(DLLS);
        s(o, "FileName", name);
        s(o, "FolderPath", path);
        let mut r = Rng::new(fnv(path.as_bytes()));
        hex(o, &mut r, "SHA1", 40);
        hex(o, &mut r, "SHA256", 64);
        hex(o, &mut r, "MD5", 32);
        int(o, "FileSize", size as i64);
        self.initiating(o, &e, false);
        self.report_id(o, e.dev, t, false);
        self.app_guard(o);
        self.machine_group(o, e.dev);
    }

    pub(super) fn device_registry_events(&mut self, o: &mut Vec<u8>, t: i64) {
        const ACTIONS: &[&str] = &[
            "RegistryValueSet",
            "RegistryValueSet",
            "RegistryKeyCreated",
            "RegistryValueDeleted",
            "RegistryKeyDeleted",
        ];
        let e = self.ev_windows(t);
        let action = *self.rng.pick(ACTIONS);
        self.device_head(o, &e, action);
        let &(k, vname, vtype, data) = self.rng.pick(pools::REGISTRY);
        let user = self.users[e.user].name;
        let file = *self.rng.pick(pools::FILES);
        let n = self.rng.range(1_000_000_000, 4_000_000_000);
        self.tmp.clear();
        expand(&mut self.tmp, k, user, file, n);
        sb(o, "RegistryKey", &self.tmp);
        let value = action.starts_with("RegistryValue");
        if value {
            s(o, "RegistryValueType", vtype);
            s(o, "RegistryValueName", vname);
            self.tmp.clear();
            expand(&mut self.tmp, data, user, file, n);
            sb(o, "RegistryValueData", &self.tmp);
        } else {
            s(o, "RegistryValueType", "None");
            s(o, "RegistryValueName", "");
            s(o, "RegistryValueData", "");
        }
        null(o, "PreviousRegistryKey");
        if value && self.rng.chance(40) {
            s(o, "PreviousRegistryValueName", vname);
            s(o, "PreviousRegistryValueData", "");
        } else {
            null(o, "PreviousRegistryValueName");
            null(o, "PreviousRegistryValueData");
        }
        self.initiating(o, &e, false);
        self.report_id(o, e.dev, t, false);
        self.app_guard(o);
        self.machine_group(o, e.dev);
    }

    pub(super) fn device_logon_events(&mut self, o: &mut Vec<u8>, t: i64) {
        const TYPES: &[&str] = &[
            "Interactive",
            "Network",
            "Network",
            "RemoteInteractive",
            "Unlock",
            "Service",
            "Batch",
            "CachedInteractive",
        ];
        let e = self.ev(t);
        let failed = self.rng.chance(15);
        self.device_head(
            o,
            &e,
            if failed {
                "LogonFailed"
            } else {
                "LogonSuccess"
            },
        );
        let logon_type = *self.rng.pick(TYPES);
        let u = &self.users[e.user];
        s(o, "LogonType", logon_type);
        s(o, "AccountDomain", &u.domain.to_lowercase());
        s(o, "AccountName", u.name);
        s(o, "AccountSid", &u.sid);
        s(
            o,
            "Protocol",
            if logon_type == "Network" {
                "NTLM"
            } else {
                "Negotiate"
            },
        );
        if failed {
            s(o, "FailureReason", "InvalidUserNameOrPassword");
        } else {
            null(o, "FailureReason");
        }
        // The export writes some booleans as 0/1.
        match self.rng.below(4) {
            0 => raw(o, "IsLocalAdmin", "0"),
            1 => raw(o, "IsLocalAdmin", "1"),
            2 => boolean(o, "IsLocalAdmin", false),
            _ => null(o, "IsLocalAdmin"),
        }
        int(o, "LogonId", self.rng.range(100_000, 90_000_000) as i64);
        if logon_type == "Network" || logon_type == "RemoteInteractive" {
            s(o, "RemoteDeviceName", "jump-host-01");
            s(o, "RemoteIP", "10.20.0.15");
            s(o, "RemoteIPType", "Private");
            int(o, "RemotePort", self.rng.range(49152, 65535) as i64);
        } else {
            null(o, "RemoteDeviceName");
            s(o, "RemoteIP", "");
            null(o, "RemoteIPType");
            null(o, "RemotePort");
        }
        self.initiating(o, &e, false);
        self.report_id(o, e.dev, t, false);
        self.app_guard(o);
        let local = matches!(logon_type, "Interactive" | "Unlock" | "CachedInteractive");
        s(
            o,
            "AdditionalFields",
            if local {
                "{\"IsLocalLogon\":true}"
            } else {
                "{\"IsLocalLogon\":false}"
            },
        );
        self.machine_group(o, e.dev);
    }

    pub(super) fn device_events(&mut self, o: &mut Vec<u8>, t: i64) {
        const ACTIONS: &[&str] = &[
            "PowerShellCommand",
            "AntivirusDetection",
            "ScheduledTaskCreated",
            "UsbDriveMounted",
            "DpapiAccessed",
            "NamedPipeEvent",
            "BrowserLaunchedToOpenUrl",
            "ProcessCreatedUsingWmiQuery",
        ];
        let e = self.ev(t);
        let action = *self.rng.pick(ACTIONS);
        self.device_head(o, &e, action);
        let file = *self.rng.pick(pools::FILES);
        let user = self.users[e.user].name;
        let detected = action == "AntivirusDetection";
        if detected {
            s(o, "FileName", file);
            s(
                o,
                "FolderPath",
                &format!(r"C:\Users\{user}\Downloads\{file}"),
            );
            hex(o, &mut self.rng, "SHA1", 40);
            hex(o, &mut self.rng, "SHA256", 64);
            hex(o, &mut self.rng, "MD5", 32);
            int(o, "FileSize", self.rng.range(1000, 9_000_000) as i64);
        } else {
            for k in [
                "FileName",
                "FolderPath",
                "SHA1",
                "SHA256",
                "MD5",
                "FileSize",
            ] {
                null(o, k);
            }
        }
        let (domain, name, sid, _) = self.account(e.ip, e.dev, e.user);
        os(o, "AccountDomain", Some(domain).filter(|_| !detected));
        os(o, "AccountName", Some(name).filter(|_| !detected));
        os(o, "AccountSid", Some(sid).filter(|_| !detected));
        if action == "BrowserLaunchedToOpenUrl" {
            s(
                o,
                "RemoteUrl",
                "https://intranet.contoso.local/Freigaben/Übersicht?ansicht=liste",
            );
        } else {
            null(o, "RemoteUrl");
        }
        null(o, "RemoteDeviceName");
        null(o, "ProcessId");
        null(o, "ProcessCommandLine");
        null(o, "ProcessCreationTime");
        null(o, "ProcessTokenElevation");
        null(o, "LogonId");
        null(o, "RegistryKey");
        null(o, "RegistryValueName");
        null(o, "RegistryValueData");
        null(o, "RemoteIP");
        null(o, "RemotePort");
        null(o, "LocalIP");
        null(o, "LocalPort");
        null(o, "FileOriginUrl");
        null(o, "FileOriginIP");
        self.initiating(o, &e, false);
        self.report_id(o, e.dev, t, false);
        self.app_guard(o);
        let i = &mut self.inner;
        i.clear();
        i.push(b'{');
        match action {
            "PowerShellCommand" => s(i, "Command", &format!("Get-ChildItem -Path 'C:\\Users\\{user}\\Documents' -Filter '*.docx' | Where-Object {{ $_.Name -like \"*Bericht*\" }}")),
            "AntivirusDetection" => {
                s(i, "ThreatName", pools::THREATS[(t as usize / 7) % pools::THREATS.len()]);
                boolean(i, "WasRemediated", true);
                boolean(i, "WasExecutingWhileDetected", false);
                s(i, "Action", "quarantine");
                s(i, "ReportSource", "Realtime");
            }
            "ScheduledTaskCreated" => {
                s(i, "TaskName", "\\Contoso\\Sicherung – täglich");
                s(i, "TaskContent", "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<Task xmlns=\"http://schemas.microsoft.com/windows/2004/02/mit/task\"><Actions Context=\"Author\"><Exec><Command>C:\\Tools\\backup.cmd</Command></Exec></Actions></Task>");
                s(i, "SubjectUserName", user);
            }
            "UsbDriveMounted" => {
                s(i, "DriveLetter", "E:");
                s(i, "ProductName", "SanDisk Ultra USB 3.0");
                s(i, "Manufacturer", "SanDisk");
                s(i, "VolumeLabel", "BACKUP_MÜLLER");
                s(i, "LoggedOnUsers", &format!("CONTOSO\\{user}"));
            }
            "DpapiAccessed" => int(i, "CallerProcessID", e.ip_pid),
            "NamedPipeEvent" => {
                s(i, "PipeName", "\\Device\\NamedPipe\\mojo.5808.8064.1234567890");
                s(i, "FileOperation", "File opened");
                int(i, "RemoteClientsAccess", 0);
            }
            _ => {}
        }
        i.push(b'}');
        if self.inner.len() == 2 {
            null(o, "AdditionalFields");
        } else {
            self.flush_inner(o, "AdditionalFields");
        }
        self.machine_group(o, e.dev);
    }

    pub(super) fn device_info(&mut self, o: &mut Vec<u8>, t: i64) {
        let dev = self.rng.index(self.devices.len());
        let d = self.digits();
        ts(o, "Timestamp", t, d);
        let device = &self.devices[dev];
        s(o, "DeviceId", &device.id);
        s(o, "DeviceName", &device.name);
        let (platform, version, build, vendor, model, client) = match device.os {
            Os::Windows => (
                "Windows11",
                "24H2",
                Some("26100"),
                "Dell Inc.",
                "Latitude 7450",
                "10.8760.26100.2454",
            ),
            Os::Mac => (
                "macOS",
                "15.1",
                None,
                "Apple",
                "MacBookPro18,3",
                "20.124102.4.0",
            ),
            Os::Linux => (
                "Linux",
                "24.04",
                None,
                "QEMU",
                "Standard PC (Q35 + ICH9, 2009)",
                "101.24092.0002",
            ),
        };
        s(o, "ClientVersion", client);
        s(o, "PublicIP", &device.public_ip);
        s(o, "OSArchitecture", "64-bit");
        s(o, "OSPlatform", platform);
        match build {
            Some(b) => raw(o, "OSBuild", b),
            None => null(o, "OSBuild"),
        }
        let windows = device.os == Os::Windows;
        boolean(o, "IsAzureADJoined", windows);
        s(
            o,
            "JoinType",
            if windows {
                "Hybrid Azure AD Join"
            } else {
                "AAD Registered"
            },
        );
        s(o, "AadDeviceId", &device.aad_id);
        let u = &self.users[device.user];
        let i = &mut self.inner;
        i.clear();
        i.push(b'[');
        i.push(b'{');
        s(i, "UserName", u.name);
        s(i, "DomainName", u.domain);
        s(i, "Sid", &u.sid);
        i.push(b'}');
        i.push(b']');
        self.flush_inner(o, "LoggedOnUsers");
        let server = {
            let n = &self.devices[dev].name;
            n.starts_with("srv") || n.starts_with("web")
        };
        s(o, "RegistryDeviceTag", "");
        s(o, "OSVersion", version);
        self.report_id(o, dev, t, true);
        s(o, "OnboardingStatus", "Onboarded");
        null(o, "AdditionalFields");
        s(o, "DeviceCategory", "Endpoint");
        s(
            o,
            "DeviceType",
            if server { "Server" } else { "Workstation" },
        );
        s(o, "DeviceSubtype", "");
        s(o, "Model", model);
        s(o, "Vendor", vendor);
        s(
            o,
            "OSDistribution",
            if windows { "Windows11" } else { platform },
        );
        s(o, "OSVersionInfo", "");
        s(o, "MergedDeviceIds", "");
        s(o, "MergedToDeviceId", "");
        null(o, "IsInternetFacing");
        s(o, "SensorHealthState", "Active");
        boolean(o, "IsExcluded", false);
        null(o, "ExclusionReason");
        s(
            o,
            "ExposureLevel",
            ["Low", "Medium", "High"][(t as usize / 13) % 3],
        );
        null(o, "AssetValue");
        null(o, "DeviceManualTags");
        null(o, "DeviceDynamicTags");
        guid(o, &mut self.rng, "HardwareUuid");
        null(o, "CloudPlatforms");
        null(o, "AzureVmId");
        null(o, "AzureResourceId");
        null(o, "AzureVmSubscriptionId");
        null(o, "GcpFullResourceName");
        null(o, "AwsResourceName");
        boolean(o, "IsTransient", false);
        if windows {
            int(o, "OsBuildRevision", 2454);
        } else {
            null(o, "OsBuildRevision");
        }
        null(o, "HostDeviceId");
        null(o, "MitigationStatus");
        s(o, "ConnectivityType", "Streamlined");
        self.machine_group(o, dev);
    }

    pub(super) fn device_network_info(&mut self, o: &mut Vec<u8>, t: i64) {
        let dev = self.rng.index(self.devices.len());
        let d = self.digits();
        ts(o, "Timestamp", t, d);
        let device = &self.devices[dev];
        s(o, "DeviceId", &device.id);
        s(o, "DeviceName", &device.name);
        let wifi = self.rng.chance(50);
        let i = &mut self.inner;
        match device.os {
            Os::Windows => {
                i.clear();
                i.push(b'{');
                push_guid(i, &mut self.rng);
                i.push(b'}');
                let name = String::from_utf8(i.clone()).expect("ASCII");
                s(o, "NetworkAdapterName", &name.to_uppercase());
            }
            _ => s(o, "NetworkAdapterName", if wifi { "en0" } else { "eth0" }),
        }
        s(o, "MacAddress", &self.devices[dev].mac);
        s(
            o,
            "NetworkAdapterType",
            if wifi { "Wireless80211" } else { "Ethernet" },
        );
        s(o, "NetworkAdapterStatus", "Up");
        s(o, "TunnelType", "None");
        let local_ip = self.devices[dev].local_ip.clone();
        let gw = format!("{}.1", &local_ip[..local_ip.rfind('.').unwrap_or(0)]);
        let i = &mut self.inner;
        i.clear();
        i.push(b'[');
        i.push(b'{');
        s(
            i,
            "Name",
            if wifi {
                "Gäste-WLAN 5G"
            } else {
                "corp.contoso.local"
            },
        );
        s(
            i,
            "Description",
            if wifi {
                "Gäste-WLAN 5G"
            } else {
                "corp.contoso.local"
            },
        );
        boolean(i, "IsConnectedToInternet", true);
        s(i, "Category", if wifi { "Public" } else { "Domain" });
        i.extend_from_slice(b"}]");
        self.flush_inner(o, "ConnectedNetworks");
        s(o, "DnsAddresses", &format!("[\"{gw}\",\"1.1.1.1\"]"));
        s(o, "DefaultGateways", &format!("[\"{gw}\"]"));
        s(o, "IPv4Dhcp", &gw);
        null(o, "IPv6Dhcp");
        let i = &mut self.inner;
        i.clear();
        i.push(b'[');
        i.push(b'{');
        s(i, "IPAddress", &local_ip);
        int(i, "SubnetPrefix", 24);
        s(i, "AddressType", "Private");
        i.extend_from_slice(b"},{");
        s(i, "IPAddress", "fe80::39f0:832a:89a1:f6e1");
        int(i, "SubnetPrefix", 64);
        s(i, "AddressType", "Private");
        i.extend_from_slice(b"}]");
        self.flush_inner(o, "IPAddresses");
        if wifi {
            s(o, "NetworkAdapterVendor", "Intel Corporation");
        } else {
            null(o, "NetworkAdapterVendor");
        }
        self.report_id(o, dev, t, true);
        self.machine_group(o, dev);
    }

    pub(super) fn device_file_certificate_info(&mut self, o: &mut Vec<u8>, t: i64) {
        let dev = self.rng.index(self.devices.len());
        let d = self.digits();
        ts(o, "Timestamp", t, d);
        let device = &self.devices[dev];
        s(o, "DeviceId", &device.id);
        s(o, "DeviceName", &device.name);
        hex(o, &mut self.rng, "SHA1", 40);
        let signed = self.rng.chance(90);
        let si = self.rng.index(pools::SIGNERS.len());
        let (signer, issuer) = pools::SIGNERS[si];
        let mut r = Rng::new(fnv(signer.as_bytes()));
        boolean(o, "IsSigned", signed);
        s(
            o,
            "SignatureType",
            if self.rng.chance(70) {
                "Embedded"
            } else {
                "Catalog"
            },
        );
        s(o, "Signer", signer);
        hex(o, &mut r, "SignerHash", 40);
        s(o, "Issuer", issuer);
        hex(o, &mut r, "IssuerHash", 40);
        hex(o, &mut r, "CertificateSerialNumber", 16);
        if si < 2 {
            s(
                o,
                "CrlDistributionPointUrls",
                "[\"http://www.microsoft.com/pkiops/crl/MicCodSigPCA2011_2011-07-08.crl\",\"http://crl.microsoft.com/pki/crl/products/MicCodSigPCA_2011-07-08.crl\"]",
            );
        } else {
            s(o, "CrlDistributionPointUrls", "[]");
        }
        let created = t - (400 + r.below(1000) as i64) * 86_400 * TICKS_PER_SEC;
        ts(o, "CertificateCreationTime", created, 0);
        ts(
            o,
            "CertificateExpirationTime",
            created + 1095 * 86_400 * TICKS_PER_SEC,
            0,
        );
        null(o, "CertificateCountersignatureTime");
        // The export writes some booleans as "true"/"".
        match self.rng.below(6) {
            0 => s(o, "IsTrusted", ""),
            1 => s(o, "IsTrusted", "true"),
            _ => boolean(o, "IsTrusted", signed),
        }
        boolean(o, "IsRootSignerMicrosoft", si < 2);
        self.report_id(o, dev, t, false);
        self.machine_group(o, dev);
    }

    /// Starts a new alert when the current one has no evidence left.
    fn current_alert(&mut self, t: i64) -> (String, usize, i64) {
        if self.alert.as_ref().is_none_or(|a| a.left == 0) {
            let mut id = Vec::with_capacity(48);
            id.extend_from_slice(if self.rng.chance(50) { b"da" } else { b"ed" });
            push_hex(&mut id, &mut self.rng, 40);
            self.alert = Some(AlertState {
                id: String::from_utf8(id).expect("ASCII"),
                kind: self.rng.index(pools::ALERTS.len()),
                event_t: t,
                left: self.rng.range(1, 6),
            });
        }
        let a = self.alert.as_mut().expect("set above");
        a.left -= 1;
        (a.id.clone(), a.kind, a.event_t)
    }

    fn techniques(o: &mut Vec<u8>, k: &str, list: &[&str]) {
        if list.is_empty() {
            s(o, k, "");
            return;
        }
        let mut v = Vec::with_capacity(128);
        v.push(b'[');
        for (n, x) in list.iter().enumerate() {
            if n > 0 {
                v.push(b',');
            }
            v.push(b'"');
            esc(&mut v, x.as_bytes());
            v.push(b'"');
        }
        v.push(b']');
        sb(o, k, &v);
    }

    pub(super) fn alert_info(&mut self, o: &mut Vec<u8>, t: i64) {
        let k = self.rng.index(pools::ALERTS.len());
        let (title, category, severity, detection, service, techniques) = pools::ALERTS[k];
        let d = self.digits();
        ts(o, "Timestamp", t, d);
        key(o, "AlertId");
        o.push(b'"');
        o.extend_from_slice(if self.rng.chance(50) { b"da" } else { b"ed" });
        push_hex(o, &mut self.rng, 40);
        o.push(b'"');
        s(o, "Title", title);
        s(o, "Category", category);
        s(o, "Severity", severity);
        s(o, "ServiceSource", service);
        s(o, "DetectionSource", detection);
        let dev = self.rng.index(self.devices.len());
        if service.ends_with("Endpoint") {
            os(o, "MachineGroup", self.devices[dev].group);
        } else {
            null(o, "MachineGroup");
        }
        Self::techniques(o, "AttackTechniques", techniques);
    }

    pub(super) fn alert_evidence(&mut self, o: &mut Vec<u8>, t0: i64) {
        let (alert_id, k, t) = self.current_alert(t0);
        let (title, category, severity, detection, service, techniques) = pools::ALERTS[k];
        let d = self.digits();
        ts(o, "Timestamp", t, d);
        s(o, "AlertId", &alert_id);
        s(o, "Title", title);
        s(o, "Categories", &format!("[\"{category}\"]"));
        Self::techniques(o, "AttackTechniques", techniques);
        s(o, "ServiceSource", service);
        s(o, "DetectionSource", detection);
        const ENTITIES: &[(&str, &str)] = &[
            ("Machine", "Impacted"),
            ("User", "Impacted"),
            ("File", "Related"),
            ("Process", "Related"),
            ("Ip", "Related"),
            ("Url", "Related"),
        ];
        let &(entity, role) = self.rng.pick(ENTITIES);
        s(o, "EntityType", entity);
        s(o, "EvidenceRole", role);
        null(o, "EvidenceDirection");
        let dev = self.rng.index(self.devices.len());
        let user = self.devices[dev].user;
        let file = *self.rng.pick(pools::FILES);
        let (is_file, is_proc) = (entity == "File", entity == "Process");
        if is_file || is_proc {
            s(o, "FileName", if is_proc { "powershell.exe" } else { file });
            if is_proc {
                s(
                    o,
                    "FolderPath",
                    r"C:\Windows\System32\WindowsPowerShell\v1.0",
                );
            } else {
                s(
                    o,
                    "FolderPath",
                    &format!(r"C:\Users\{}\Downloads", self.users[user].name),
                );
            }
            hex(o, &mut self.rng, "SHA1", 40);
            hex(o, &mut self.rng, "SHA256", 64);
            int(o, "FileSize", self.rng.range(1000, 5_000_000) as i64);
        } else {
            for c in ["FileName", "FolderPath", "SHA1", "SHA256", "FileSize"] {
                null(o, c);
            }
        }
        if entity == "Malware" || is_file && self.rng.chance(50) {
            s(o, "ThreatFamily", "Wacatac");
        } else {
            null(o, "ThreatFamily");
        }
        if entity == "Ip" {
            s(o, "RemoteIP", "198.51.100.23");
        } else {
            null(o, "RemoteIP");
        }
        if entity == "Url" {
            s(
                o,
                "RemoteUrl",
                "https://xn--mnchen-3ya.example/anmeldung?session=1",
            );
        } else {
            null(o, "RemoteUrl");
        }
        if entity == "User" {
            let u = &self.users[user];
            s(o, "AccountName", u.name);
            s(o, "AccountDomain", &u.domain.to_lowercase());
            s(o, "AccountSid", &u.sid);
            s(o, "AccountObjectId", &u.object_id);
            s(o, "AccountUpn", &u.upn);
        } else {
            for c in [
                "AccountName",
                "AccountDomain",
                "AccountSid",
                "AccountObjectId",
                "AccountUpn",
            ] {
                null(o, c);
            }
        }
        let device = &self.devices[dev];
        if entity == "Machine" || is_proc || is_file {
            s(o, "DeviceId", &device.id);
            s(o, "DeviceName", &device.name);
            s(o, "LocalIP", &device.local_ip);
        } else {
            null(o, "DeviceId");
            null(o, "DeviceName");
            null(o, "LocalIP");
        }
        for c in [
            "NetworkMessageId",
            "EmailSubject",
            "ApplicationId",
            "Application",
            "OAuthApplicationId",
        ] {
            null(o, c);
        }
        if is_proc {
            let u = self.users[user].name;
            s(o, "ProcessCommandLine", &format!("powershell.exe -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA -NoP -W Hidden # {u}"));
        } else {
            null(o, "ProcessCommandLine");
        }
        for c in ["RegistryKey", "RegistryValueName", "RegistryValueData"] {
            null(o, c);
        }
        let i = &mut self.inner;
        i.clear();
        i.push(b'{');
        s(i, "$id", "1");
        s(i, "Type", &entity.to_lowercase());
        int(i, "Role", if role == "Impacted" { 0 } else { 1 });
        if entity == "Machine" {
            s(i, "HostName", short_name(&device.name));
            s(i, "OSFamily", "Windows");
            s(i, "MdatpDeviceId", &device.id);
        } else if entity == "Ip" {
            s(i, "Address", "198.51.100.23");
            s(i, "Location", "{\"CountryCode\":\"DE\",\"City\":\"Köln\"}");
        }
        i.push(b'}');
        self.flush_inner(o, "AdditionalFields");
        s(o, "Severity", severity);
        null(o, "CloudResource");
        s(o, "CloudPlatform", "");
        null(o, "ResourceType");
        null(o, "ResourceID");
        s(o, "SubscriptionId", "");
        if entity == "Machine" || is_proc || is_file {
            os(o, "MachineGroup", self.devices[dev].group);
        } else {
            null(o, "MachineGroup");
        }
    }

    pub(super) fn email_events(&mut self, o: &mut Vec<u8>, t: i64) {
        // Email timestamps have whole seconds.
        let t = t - t.rem_euclid(TICKS_PER_SEC);
        ts(o, "Timestamp", t, 0);
        let mut nmid = Vec::with_capacity(36);
        push_guid(&mut nmid, &mut self.rng);
        sb(o, "NetworkMessageId", &nmid);
        key(o, "InternetMessageId");
        o.extend_from_slice(b"\"<");
        push_guid(o, &mut self.rng);
        o.extend_from_slice(b"@mail.fabrikam.example>\"");
        let inbound = self.rng.chance(70);
        let ru = self.rng.index(self.users.len());
        let recipient = self.users[ru].upn.clone();
        // Intra-org mail comes from the next user in the pool.
        let su = (ru + 1) % self.users.len();
        let (from, name, domain) = if inbound {
            (
                "rechnung@lieferant-müller.example",
                "Müller & Söhne Buchhaltung",
                "lieferant-müller.example",
            )
        } else {
            (
                self.users[su].upn.as_str(),
                self.users[su].name,
                pools::UPN_SUFFIX,
            )
        };
        s(o, "SenderMailFromAddress", from);
        s(o, "SenderFromAddress", from);
        s(o, "SenderDisplayName", name);
        if inbound {
            null(o, "SenderObjectId");
        } else {
            s(o, "SenderObjectId", &self.users[su].object_id);
        }
        s(o, "SenderMailFromDomain", domain);
        s(o, "SenderFromDomain", domain);
        s(o, "SenderIPv4", "198.51.100.77");
        null(o, "SenderIPv6");
        s(o, "RecipientEmailAddress", &recipient);
        s(o, "RecipientObjectId", &self.users[ru].object_id);
        let subject = *self.rng.pick(pools::SUBJECTS);
        s(o, "Subject", subject);
        int(
            o,
            "EmailClusterId",
            self.rng.range(1_000_000_000, 4_000_000_000) as i64,
        );
        s(
            o,
            "EmailDirection",
            if inbound { "Inbound" } else { "Intra-org" },
        );
        let phish = inbound && self.rng.chance(10);
        s(
            o,
            "DeliveryAction",
            if phish { "Junked" } else { "Delivered" },
        );
        s(
            o,
            "DeliveryLocation",
            if phish { "Junk folder" } else { "Inbox/folder" },
        );
        os(o, "ThreatTypes", Some("Phish").filter(|_| phish));
        null(o, "ThreatNames");
        os(
            o,
            "DetectionMethods",
            Some("{\"Phish\":[\"URL detonation reputation\"]}").filter(|_| phish),
        );
        null(o, "ConfidenceLevel");
        null(o, "BulkComplaintLevel");
        null(o, "EmailAction");
        null(o, "EmailActionPolicy");
        null(o, "EmailActionPolicyGuid");
        s(
            o,
            "AuthenticationDetails",
            if phish {
                "{\"SPF\":\"fail\",\"DKIM\":\"none\",\"DMARC\":\"fail\",\"CompAuth\":\"fail\"}"
            } else {
                "{\"SPF\":\"pass\",\"DKIM\":\"pass\",\"DMARC\":\"pass\",\"CompAuth\":\"pass\"}"
            },
        );
        int(o, "AttachmentCount", self.rng.below(3) as i64);
        int(o, "UrlCount", self.rng.below(20) as i64);
        s(
            o,
            "EmailLanguage",
            if self.rng.chance(60) { "de" } else { "en" },
        );
        null(o, "Connectors");
        null(o, "OrgLevelAction");
        null(o, "OrgLevelPolicy");
        null(o, "UserLevelAction");
        null(o, "UserLevelPolicy");
        key(o, "ReportId");
        o.push(b'"');
        o.extend_from_slice(&nmid);
        o.push(b'-');
        o.extend_from_slice(itoa::Buffer::new().format(self.rng.u64()).as_bytes());
        o.extend_from_slice(b"-1\"");
        null(o, "AdditionalFields");
        null(o, "ExchangeTransportRule");
        null(o, "DistributionList");
        null(o, "ForwardingInformation");
        null(o, "Context");
        // To and Cc are native arrays on Email rows.
        key(o, "To");
        o.push(b'[');
        o.push(b'"');
        esc(o, recipient.as_bytes());
        o.extend_from_slice(b"\"]");
        raw(o, "Cc", "[]");
        null(o, "ThreatClassification");
        s(o, "RecipientDomain", pools::UPN_SUFFIX);
        int(o, "EmailSize", self.rng.range(4_000, 2_000_000) as i64);
        boolean(o, "IsFirstContact", inbound && self.rng.chance(30));
    }

    pub(super) fn identity_logon_events(&mut self, o: &mut Vec<u8>, t: i64) {
        let failed = self.rng.chance(15);
        s(
            o,
            "ActionType",
            if failed {
                "LogonFailed"
            } else {
                "LogonSuccess"
            },
        );
        s(o, "LogonType", "Login:reprocess");
        null(o, "Protocol");
        let u = self.rng.index(self.users.len());
        let user = &self.users[u];
        s(o, "AccountDisplayName", user.name);
        s(o, "AccountUpn", &user.upn);
        s(o, "AccountName", user.name);
        s(o, "AccountDomain", pools::UPN_SUFFIX);
        null(o, "AccountSid");
        s(o, "AccountObjectId", &user.object_id);
        s(o, "IPAddress", "2001:db8:1f05::1077");
        s(o, "Location", "DE");
        null(o, "DeviceName");
        s(o, "OSPlatform", "Windows 10");
        s(o, "DeviceType", "Desktop");
        s(o, "ISP", "Deutsche Telekom AG");
        null(o, "DestinationDeviceName");
        null(o, "TargetDeviceName");
        if failed {
            s(o, "FailureReason", "UserAccountLockedOut");
        } else {
            null(o, "FailureReason");
        }
        null(o, "Port");
        null(o, "DestinationPort");
        null(o, "DestinationIPAddress");
        null(o, "TargetAccountDisplayName");
        // Identity rows carry dynamic columns as native JSON.
        key(o, "AdditionalFields");
        o.extend_from_slice(b"{\"ARG.CLOUD_SERVICE\":\"Microsoft 365\",\"Request ID\":\"");
        push_guid(o, &mut self.rng);
        o.extend_from_slice(b"\",\"Pass-through authentication\":\"false\",\"ACTOR.ALIAS\":\"");
        esc(o, user.name.as_bytes());
        o.extend_from_slice(b"\"}");
        raw(o, "UncommonForUser", "[]");
        raw(
            o,
            "LastSeenForUser",
            "{\"ActionType\":0,\"OSPlatform\":0,\"ISP\":0,\"CountryCode\":0,\"IPAddress\":0}",
        );
        hex(o, &mut self.rng, "ReportId", 64);
        let d = self.digits();
        ts(o, "Timestamp", t, d.min(3));
        s(o, "Application", "Microsoft 365");
    }

    pub(super) fn cloud_app_events(&mut self, o: &mut Vec<u8>, t: i64) {
        const ACTIONS: &[(&str, &str)] = &[
            ("FileDownloaded", "SharePoint Online"),
            ("FileAccessed", "Microsoft OneDrive for Business"),
            ("MailItemsAccessed", "Microsoft Exchange Online"),
            ("Add member to role.", "Microsoft Entra ID"),
            ("MessageSent", "Microsoft Teams"),
        ];
        let &(action, app) = self.rng.pick(ACTIONS);
        let u = self.rng.index(self.users.len());
        let file = *self.rng.pick(pools::FILES);
        let d = self.digits();
        ts(o, "Timestamp", t, d.min(3));
        s(o, "ActionType", action);
        s(o, "Application", app);
        int(o, "ApplicationId", 20892 + self.rng.below(5) as i64);
        let user = &self.users[u];
        s(o, "AccountObjectId", &user.object_id);
        s(o, "AccountId", &user.object_id);
        s(o, "AccountDisplayName", user.name);
        boolean(o, "IsAdminOperation", action.starts_with("Add"));
        s(o, "DeviceType", "Desktop");
        s(o, "OSPlatform", "Windows 10");
        s(o, "IPAddress", "203.0.113.50");
        boolean(o, "IsAnonymousProxy", false);
        s(o, "CountryCode", "DE");
        s(o, "City", "münchen");
        s(o, "ISP", "Deutsche Telekom AG");
        s(o, "UserAgent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0");
        s(o, "ActivityType", "Basic");
        // Native JSON objects and arrays on this table.
        key(o, "ActivityObjects");
        o.extend_from_slice(b"[{\"Type\":\"File\",\"Role\":\"Target object\",\"Name\":\"");
        esc(o, file.as_bytes());
        o.extend_from_slice(b"\",\"Id\":\"https://contoso.sharepoint.com/sites/Vertrieb/");
        esc(o, file.as_bytes());
        o.extend_from_slice(b"\"},{\"Type\":\"User\",\"Role\":\"Actor\",\"Name\":\"");
        esc(o, user.name.as_bytes());
        o.extend_from_slice(b"\",\"Id\":\"");
        o.extend_from_slice(user.object_id.as_bytes());
        o.extend_from_slice(b"\"}]");
        s(o, "ObjectName", file);
        s(o, "ObjectType", "File");
        null(o, "ObjectId");
        key(o, "ReportId");
        o.push(b'"');
        push_hex(o, &mut self.rng, 64);
        o.extend_from_slice(b"_20892\"");
        int(o, "AppInstanceId", 0);
        s(o, "AccountType", "Regular");
        boolean(o, "IsExternalUser", false);
        boolean(o, "IsImpersonated", false);
        raw(o, "IPTags", "[\"Deutsche Telekom\"]");
        s(o, "IPCategory", "ISP");
        null(o, "UserAgentTags");
        key(o, "RawEventData");
        o.extend_from_slice(b"{\"CreationTime\":\"");
        write_ts(o, t, 0);
        o.extend_from_slice(b"\",\"Operation\":\"");
        esc(o, action.as_bytes());
        o.extend_from_slice(b"\",\"UserId\":\"");
        esc(o, user.upn.as_bytes());
        o.extend_from_slice(b"\",\"SourceFileName\":\"");
        esc(o, file.as_bytes());
        o.extend_from_slice(b"\",\"Workload\":\"SharePoint\",\"RecordType\":6}");
        raw(o, "AdditionalFields", "{\"IsSatelliteProvider\":false}");
        raw(o, "UncommonForUser", "[]");
        raw(
            o,
            "LastSeenForUser",
            "{\"ActionType\":0,\"ISP\":0,\"IPAddress\":0}",
        );
        null(o, "SessionData");
        s(o, "AuditSource", "Defender for Cloud Apps access control");
        null(o, "OAuthAppId");
    }
}

/// The host part of a device FQDN.
fn short_name(fqdn: &str) -> &str {
    fqdn.split('.').next().unwrap_or(fqdn)
}

/// The token elevation that goes with an integrity level.
fn elevation(integrity: &str) -> &'static str {
    match integrity {
        "High" => "TokenElevationTypeFull",
        "Low" | "Medium" => "TokenElevationTypeLimited",
        _ => "TokenElevationTypeDefault",
    }
}

/// The six `<prefix>VersionInfo*` columns.
fn version_info(o: &mut Vec<u8>, prefix: &str, v: Option<pools::VersionInfo>) {
    const COLS: [&str; 6] = [
        "VersionInfoCompanyName",
        "VersionInfoProductName",
        "VersionInfoProductVersion",
        "VersionInfoFileDescription",
        "VersionInfoInternalFileName",
        "VersionInfoOriginalFileName",
    ];
    let vals = v.map(|v| [v.0, v.1, v.2, v.3, v.4, v.5]);
    for (i, c) in COLS.iter().enumerate() {
        if !matches!(o.last(), Some(b'{')) {
            o.push(b',');
        }
        o.push(b'"');
        o.extend_from_slice(prefix.as_bytes());
        o.extend_from_slice(c.as_bytes());
        o.extend_from_slice(b"\":");
        match vals.map(|v| v[i]) {
            Some(x) if !x.is_empty() => {
                o.push(b'"');
                esc(o, x.as_bytes());
                o.push(b'"');
            }
            _ => o.extend_from_slice(b"null"),
        }
    }
}
