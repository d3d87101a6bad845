//! Static value pools the generator draws from: processes, files, users, registry keys, remote
//! hosts. Invented names in the shapes the export carries (Windows paths with backslashes,
//! lower-cased initiating-process folders, macOS bundles, Linux binaries), with non-ASCII
//! (umlauts, CJK, Cyrillic, emoji) and mis-decoded text mixed in on purpose.

/// Operating system family of a simulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Os {
    Windows,
    Mac,
    Linux,
}

/// Version information of an executable (`*VersionInfo*` columns).
pub(super) type VersionInfo = (
    &'static str, // company
    &'static str, // product
    &'static str, // product version
    &'static str, // file description
    &'static str, // internal file name
    &'static str, // original file name
);

/// One executable: image name, full path, command-line template and metadata.
///
/// Templates expand `{u}` to the account name, `{f}` to a document file name and `{n}` to a
/// number.
pub(super) struct Proc {
    pub os: Os,
    pub file: &'static str,
    pub path: &'static str,
    pub cmd: &'static str,
    pub size: u64,
    pub version: Option<VersionInfo>,
    pub integrity: &'static str,
}

const MS: &str = "Microsoft Corporation";
const WINOS: &str = "Microsoft® Windows® Operating System";
/// The ® as Latin-1 bytes read as UTF-8 twice: how mis-decoded metadata really looks.
const WINOS_MOJIBAKE: &str = "MicrosoftÂ® WindowsÂ® Operating System";

const fn p(
    os: Os,
    file: &'static str,
    path: &'static str,
    cmd: &'static str,
    size: u64,
    version: Option<VersionInfo>,
    integrity: &'static str,
) -> Proc {
    Proc {
        os,
        file,
        path,
        cmd,
        size,
        version,
        integrity,
    }
}

use Os::*;

/// Executables seen as process images and initiating processes.
pub(super) static PROCS: &[Proc] = &[
    p(Windows, "powershell.exe", r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
      r#"powershell.exe -NoProfile -ExecutionPolicy Bypass -File "C:\Users\{u}\Documents\Skripte\Überprüfung_{n}.ps1""#,
      454656, Some((MS, WINOS, "10.0.26100.2454", "Windows PowerShell", "POWERSHELL", "PowerShell.EXE")), "High"),
    p(Windows, "cmd.exe", r"C:\Windows\System32\cmd.exe",
      r#"C:\WINDOWS\system32\cmd.exe /c "copy "C:\Users\{u}\Desktop\{f}" \\fs01.contoso.local\Austausch$\{u}\ /Y""#,
      323584, Some((MS, WINOS, "10.0.26100.1", "Windows Command Processor", "cmd", "Cmd.Exe")), "Medium"),
    p(Windows, "chrome.exe", r"C:\Program Files\Google\Chrome\Application\chrome.exe",
      r#""C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer --lang=de --js-flags=--ms-user-locale= --device-scale-factor=1.25 --num-raster-threads=4 --renderer-client-id={n} --launch-time-ticks=4427{n} --field-trial-handle=1932,i,1532{n},13,262144 /prefetch:1"#,
      3118360, Some(("Google LLC", "Google Chrome", "131.0.6778.86", "Google Chrome", "chrome_exe", "chrome.exe")), "Low"),
    p(Windows, "WINWORD.EXE", r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
      r#""C:\Program Files\Microsoft Office\Root\Office16\WINWORD.EXE" /n "C:\Users\{u}\Downloads\{f}" /o """#,
      1725304, Some((MS, "Microsoft Office", "16.0.18129.20158", "Microsoft Word", "WinWord", "WinWord.exe")), "Medium"),
    p(Windows, "EXCEL.EXE", r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE",
      r#""C:\Program Files\Microsoft Office\Root\Office16\EXCEL.EXE" "C:\Users\{u}\OneDrive - Contoso GmbH\Dokumente\{f}""#,
      68321752, Some((MS, "Microsoft Office", "16.0.18129.20158", "Microsoft Excel", "Excel", "Excel.exe")), "Medium"),
    p(Windows, "svchost.exe", r"C:\Windows\System32\svchost.exe",
      r"C:\WINDOWS\system32\svchost.exe -k netsvcs -p -s Schedule",
      57360, Some((MS, WINOS, "10.0.26100.1882", "Host Process for Windows Services", "svchost.exe", "svchost.exe")), "System"),
    p(Windows, "msedge.exe", r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
      r#""C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe" --single-argument https://intranet.contoso.local/suche?q=Stra%C3%9Fe&lang=de"#,
      4125160, Some((MS, "Microsoft Edge", "131.0.2903.70", "Microsoft Edge", "msedge_exe", "msedge.exe")), "Medium"),
    p(Windows, "explorer.exe", r"C:\Windows\explorer.exe",
      r"C:\WINDOWS\Explorer.EXE",
      5500064, Some((MS, WINOS_MOJIBAKE, "10.0.26100.2454", "Windows Explorer", "explorer", "EXPLORER.EXE")), "Medium"),
    p(Windows, "rundll32.exe", r"C:\Windows\System32\rundll32.exe",
      r#"rundll32.exe "C:\Users\{u}\AppData\Local\Temp\{n}\setup_helper.dll",DllRegisterServer"#,
      71680, Some((MS, WINOS, "10.0.26100.1", "Windows host process (Rundll32)", "RUNDLL32.EXE", "RUNDLL32.EXE")), "Medium"),
    p(Windows, "OneDrive.exe", r"C:\Program Files\Microsoft OneDrive\OneDrive.exe",
      r#""C:\Program Files\Microsoft OneDrive\OneDrive.exe" /background"#,
      3560240, Some((MS, "Microsoft OneDrive", "24.226.1110.0004", "Microsoft OneDrive", "OneDrive.exe", "OneDrive.exe")), "Medium"),
    p(Windows, "ms-teams.exe", r"C:\Program Files\WindowsApps\MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe\ms-teams.exe",
      r#""C:\Program Files\WindowsApps\MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe\ms-teams.exe" msteams:system-initiated"#,
      1254704, Some((MS, "Microsoft Teams", "24295.605.3225.8804", "Microsoft Teams", "ms-teams.exe", "ms-teams.exe")), "Medium"),
    p(Windows, "MsMpEng.exe", r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24090.11-0\MsMpEng.exe",
      r#""MsMpEng.exe""#,
      133584, Some((MS, WINOS, "4.18.24090.11", "Antimalware Service Executable", "MsMpEng.exe", "MsMpEng.exe")), "System"),
    p(Windows, "SenseIR.exe", r"C:\Program Files\Windows Defender Advanced Threat Protection\SenseIR.exe",
      r#""SenseIR.exe" "OnlineSenseIR" "{n}""#,
      2981240, Some((MS, WINOS, "10.8760.26100.2454", "Windows Defender Advanced Threat Protection Sense IR", "SenseIR.exe", "SenseIR.exe")), "System"),
    p(Windows, "git.exe", r"C:\Program Files\Git\cmd\git.exe",
      r#""C:\Program Files\Git\cmd\git.exe" -c core.quotepath=false commit -m "Übersetzung: 日本語 und 中文 ergänzt 🎉""#,
      45944, Some(("The Git Development Community", "Git", "2.47.1.1", "Git for Windows", "git", "git.exe")), "Medium"),
    p(Windows, "python.exe", r"C:\Users\Public\Python312\python.exe",
      r#""C:\Users\Public\Python312\python.exe" -m pip install --user "requests>=2.32" --index-url https://pypi.org/simple"#,
      103192, Some(("Python Software Foundation", "Python", "3.12.7", "Python", "Python Console", "python.exe")), "Medium"),
    p(Windows, "notepad.exe", r"C:\Windows\System32\notepad.exe",
      r#""C:\WINDOWS\system32\NOTEPAD.EXE" C:\Users\{u}\Desktop\{f}"#,
      360448, Some((MS, WINOS, "10.0.26100.1", "Notepad", "Notepad", "NOTEPAD.EXE")), "Medium"),
    p(Windows, "schtasks.exe", r"C:\Windows\System32\schtasks.exe",
      r#"schtasks.exe /Create /TN "\Contoso\Sicherung – täglich" /TR "C:\Tools\backup.cmd" /SC DAILY /ST 02:{n} /RU SYSTEM /F"#,
      235008, Some((MS, WINOS, "10.0.26100.1", "Task Scheduler Configuration Tool", "schtasks.exe", "schtasks.exe")), "High"),
    p(Windows, "wmiprvse.exe", r"C:\Windows\System32\wbem\WmiPrvSE.exe",
      r"C:\WINDOWS\system32\wbem\wmiprvse.exe -secured -Embedding",
      570368, Some((MS, WINOS, "10.0.26100.2454", "WMI Provider Host", "Wmiprvse.exe", "Wmiprvse.exe")), "System"),
    p(Windows, "services.exe", r"C:\Windows\System32\services.exe",
      r"C:\WINDOWS\system32\services.exe",
      765952, Some((MS, WINOS, "10.0.26100.2454", "Services and Controller app", "services.exe", "services.exe")), "System"),
    p(Windows, "userinit.exe", r"C:\Windows\System32\userinit.exe",
      r"C:\WINDOWS\system32\userinit.exe",
      39424, None, "High"),
    p(Mac, "zsh", "/bin/zsh",
      "-zsh -c 'cp ~/Downloads/{f} /Volumes/Projekte/{u}/'",
      1361200, Some(("(APPLE)", "", "", "", "", "")), ""),
    p(Mac, "python3.9", "/Library/Developer/CommandLineTools/Library/Frameworks/Python3.framework/Versions/3.9/bin/python3.9",
      "/Library/Developer/CommandLineTools/usr/bin/python3 \"/Applications/Microsoft Defender.app/Contents/Resources/Scripts/open_files.py\" --ScriptName open_files.py --id {n}",
      53200, Some(("(APPLE)", "", "", "", "", "")), ""),
    p(Mac, "microsoft update assistant", "/Library/Application Support/Microsoft/MAU2.0/Microsoft AutoUpdate.app/Contents/MacOS/Microsoft Update Assistant.app/Contents/MacOS/Microsoft Update Assistant",
      "\"/Library/Application Support/Microsoft/MAU2.0/Microsoft AutoUpdate.app/Contents/MacOS/Microsoft Update Assistant.app/Contents/MacOS/Microsoft Update Assistant\" --launchByAgent",
      3376912, Some(("UBF8T346G9", "", "", "", "", "")), ""),
    p(Mac, "curl", "/usr/bin/curl",
      "curl -fsSL https://downloads.contoso.example/agent/install.sh -o /tmp/install-{n}.sh",
      203296, Some(("(APPLE)", "", "", "", "", "")), ""),
    p(Mac, "launchd", "/sbin/launchd", "/sbin/launchd", 921696, Some(("(APPLE)", "", "", "", "", "")), ""),
    p(Linux, "bash", "/usr/bin/bash",
      "/bin/bash -c 'tar czf /var/backups/home-{u}-{n}.tgz /home/{u}/Dokumente'",
      1396520, None, ""),
    p(Linux, "sshd", "/usr/sbin/sshd", "sshd: {u} [priv]", 921480, None, ""),
    p(Linux, "python3", "/usr/bin/python3.12",
      "/usr/bin/python3 /opt/contoso/collector/run.py --config /etc/contoso/collector.yaml --worker {n}",
      8019136, None, ""),
    p(Linux, "systemd", "/usr/lib/systemd/systemd", "/sbin/init splash", 100056, None, ""),
    p(Linux, "dpkg", "/usr/bin/dpkg",
      "/usr/bin/dpkg --status-fd 55 --no-triggers --unpack --auto-deconfigure /var/cache/apt/archives/libssl3t64_3.0.13-0ubuntu3.{n}_amd64.deb",
      326360, None, ""),
];

/// Document file names (files created, opened, attached).
pub(super) static FILES: &[&str] = &[
    "Q3-Umsatzübersicht.xlsx",
    "Résumé_Zoë Dubois.docx",
    "会議メモ_2026-11.docx",
    "📊 Budget 2026 (final).xlsx",
    "setup_x64.msi",
    "~$Bericht.docx",
    "Отчёт_по_продажам.pdf",
    "Urlaubsfoto 😀 Mallorca.jpg",
    "invoice#4471.pdf",
    "data.tmp",
    "Ãœbersicht_Kunden.csv",
    "项目计划书.pptx",
    "Präsentation – Vorstand.pptx",
    "notes.txt",
    "Angebot_Müller & Söhne.pdf",
    "report_2026-11-24.html",
    "Scan0042.pdf",
    "🚀 launch-checklist.md",
];

/// Users: account name and domain. Security identifiers and object ids are generated.
pub(super) static USERS: &[(&str, &str)] = &[
    ("jürgen.müller", "CONTOSO"),
    ("zoë.dubois", "CONTOSO"),
    ("søren.nielsen", "CONTOSO"),
    ("李伟", "CONTOSO"),
    ("田中太郎", "CONTOSO"),
    ("ana.garcía", "CONTOSO"),
    ("o'brien.sean", "CONTOSO"),
    ("a.schmidt", "CONTOSO"),
    ("m.kowalski", "CONTOSO"),
    ("svc_backup", "CONTOSO"),
    ("admin-tk", "CONTOSO"),
    ("Ã¶zlem.yÄ±lmaz", "CONTOSO"),
    ("emma.wilson", "CONTOSO"),
    ("ivan.petrov", "CONTOSO"),
];

/// UPN suffix of domain users.
pub(super) const UPN_SUFFIX: &str = "contoso.de";

/// Device name stems; a number is appended.
pub(super) static DEVICE_STEMS: &[(&str, Os, &str)] = &[
    ("wks-", Windows, ".contoso.local"),
    ("büro-laptop-", Windows, ".contoso.local"),
    ("srv-sql-", Windows, ".corp.contoso.com"),
    ("srv-fs", Windows, ".corp.contoso.com"),
    ("desktop-", Windows, ""),
    ("mbp-", Mac, ""),
    ("ubuntu-build-", Linux, ""),
    ("web-", Linux, ".dmz.contoso.com"),
];

/// Device groups. `None` is written as `null`.
pub(super) static MACHINE_GROUPS: &[Option<&str>] = &[
    Some("Workstations"),
    Some("Workstations"),
    Some("Server – Frankfurt"),
    Some("Tier 0"),
    Some("Entwicklung (Dev)"),
    Some("UnassignedGroup"),
    Some("UnassignedGroup"),
    None,
];

/// Remote hosts for network connections.
pub(super) static REMOTE_URLS: &[&str] = &[
    "login.microsoftonline.com",
    "contoso.sharepoint.com",
    "www.google.com",
    "api.github.com",
    "winatp-gw-weu.microsoft.com",
    "update.googleapis.com",
    "outlook.office365.com",
    "münchen-wetter.example",
    "xn--bcher-kva.example",
    "cdn.jsdelivr.net",
    "ocsp.digicert.com",
    "telemetry.contoso.example",
];

/// Registry keys with value names, types and data templates.
pub(super) static REGISTRY: &[(&str, &str, &str, &str)] = &[
    (
        r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run",
        "OneDrive",
        "String",
        r#""C:\Program Files\Microsoft OneDrive\OneDrive.exe" /background"#,
    ),
    (
        r"HKEY_CURRENT_USER\S-1-5-21-{n}\SOFTWARE\Microsoft\Office\16.0\Word\Reading Locations\Document 0",
        "File Path",
        "String",
        r"C:\Users\{u}\Downloads\{f}",
    ),
    (
        r"HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\bam\State\UserSettings\S-1-5-21-{n}",
        r"\Device\HarddiskVolume3\Windows\System32\notepad.exe",
        "Binary",
        "",
    ),
    (
        r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows Defender\Real-Time Protection",
        "DisableRealtimeMonitoring",
        "Dword",
        "0",
    ),
    (
        r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tree\Contoso\Sicherung – täglich",
        "Id",
        "String",
        "{{n}-8B4E-4C1A-9A51-2F0D3B7C9E41}",
    ),
    (
        r"HKEY_CURRENT_USER\S-1-5-21-{n}\Software\Microsoft\Windows\CurrentVersion\Explorer\RecentDocs\.docx",
        "MRUListEx",
        "Binary",
        "",
    ),
];

/// Signers for DeviceFileCertificateInfo: signer, issuer.
pub(super) static SIGNERS: &[(&str, &str)] = &[
    ("Microsoft Windows", "Microsoft Windows Production PCA 2011"),
    ("Microsoft Corporation", "Microsoft Code Signing PCA 2011"),
    (
        "Google LLC",
        "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1",
    ),
    (
        "Developer ID Application: Google LLC (EQHXZ8M8AV)",
        "Developer ID Certification Authority",
    ),
    (
        "Müller & Söhne Softwareentwicklung GmbH",
        "Sectigo Public Code Signing CA R36",
    ),
    (
        "北京示例科技有限公司",
        "GlobalSign GCC R45 EV CodeSigning CA 2020",
    ),
];

/// An alert kind: title, category, severity, detection source, service source, MITRE
/// techniques.
pub(super) type Alert = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

/// Alert kinds.
pub(super) static ALERTS: &[Alert] = &[
    (
        "Suspicious PowerShell command line",
        "Execution",
        "Medium",
        "EDR",
        "Microsoft Defender for Endpoint",
        &[
            "PowerShell (T1059.001)",
            "Obfuscated Files or Information (T1027)",
        ],
    ),
    (
        "'Wacatac' malware was detected",
        "Malware",
        "Informational",
        "Antivirus",
        "Microsoft Defender for Endpoint",
        &[],
    ),
    (
        "Malicious IP address",
        "InitialAccess",
        "High",
        "AAD Identity Protection",
        "AAD Identity Protection",
        &[],
    ),
    (
        "Verdächtige Anmeldung aus unbekanntem Land",
        "CredentialAccess",
        "Medium",
        "Microsoft Defender for Identity",
        "Microsoft Defender for Identity",
        &["Valid Accounts (T1078)", "Brute Force (T1110)"],
    ),
    (
        "Email messages containing malicious URL removed after delivery",
        "InitialAccess",
        "Informational",
        "MTP",
        "Microsoft Defender for Office 365",
        &["Phishing (T1566)", "Spearphishing Link (T1566.002)"],
    ),
    (
        "Possible lateral movement using remote scheduled task",
        "LateralMovement",
        "High",
        "EDR",
        "Microsoft Defender XDR",
        &["Scheduled Task (T1053.005)", "Remote Services (T1021)"],
    ),
];

/// Threat names for antivirus detections.
pub(super) static THREATS: &[&str] = &[
    "Trojan:Win32/Wacatac.B!ml",
    "HackTool:Win32/Mimikatz.D",
    "PUA:Win32/Presenoker",
    "Trojan:Script/Wacatac.H!ml",
    "Behavior:Win32/SuspPowershell.A",
];

/// Email subjects.
pub(super) static SUBJECTS: &[&str] = &[
    "Ihre Rechnung Nr. 2026-4471 – bitte prüfen",
    "Re: Meeting notes 📝",
    "【重要】パスワードの有効期限が近づいています",
    "Quarterly results – confidential",
    "Fwd: Angebot für Müller & Söhne",
    "Action required: verify your account",
    "Счёт на оплату",
];
