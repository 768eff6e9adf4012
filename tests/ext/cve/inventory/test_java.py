"""Java archives built by the test: pom.properties as Maven writes it, in jars, fat jars and
wars, read from the tar stream."""

from __future__ import annotations

import io
import zipfile

import pytest

from ocireg.ext.cve.inventory import inventory, java

from .images import File, layer


def pom_properties(group: str, artifact: str, version: str) -> bytes:
    return (
        f"#Created by Apache Maven 3.6.3\nversion={version}\ngroupId={group}\n"
        f"artifactId={artifact}\n"
    ).encode()


def jar(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def maven_jar(group: str, artifact: str, version: str) -> bytes:
    path = f"META-INF/maven/{group}/{artifact}/pom.properties"
    return jar((path, pom_properties(group, artifact, version)), (f"{artifact}.class", b"\xca"))


LOG4J = maven_jar("org.apache.logging.log4j", "log4j-core", "2.14.1")
JACKSON = maven_jar("com.fasterxml.jackson.core", "jackson-databind", "2.13.0")


def test_a_jar_and_the_jars_a_fat_jar_and_a_war_nest() -> None:
    fat = jar(
        (
            "META-INF/maven/com.example/demo/pom.properties",
            pom_properties("com.example", "demo", "1.0.0"),
        ),
        ("BOOT-INF/lib/jackson-databind-2.13.0.jar", JACKSON),
    )
    war = jar(("WEB-INF/lib/log4j-core-2.14.1.jar", LOG4J))
    found = inventory(
        [
            layer(
                [
                    File("opt/app/lib/log4j-core-2.14.1.jar", LOG4J),
                    File("opt/app/app.jar", fat),
                    File("usr/local/tomcat/webapps/shop.WAR", war),
                ]
            )
        ]
    ).packages
    assert sorted((p.path, p.name, p.version) for p in found) == [
        ("opt/app/app.jar", "com.example:demo", "1.0.0"),
        ("opt/app/app.jar", "com.fasterxml.jackson.core:jackson-databind", "2.13.0"),
        ("opt/app/lib/log4j-core-2.14.1.jar", "org.apache.logging.log4j:log4j-core", "2.14.1"),
        ("usr/local/tomcat/webapps/shop.WAR", "org.apache.logging.log4j:log4j-core", "2.14.1"),
    ]
    assert {p.ecosystem for p in found} == {"Maven"}
    log4j = next(p for p in found if p.path.endswith("log4j-core-2.14.1.jar"))
    assert log4j.purl == "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"


def test_a_nested_archive_over_its_cap_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(java, "NESTED_LIMIT", 100)
    fat = jar(("BOOT-INF/lib/jackson-databind-2.13.0.jar", JACKSON))
    assert inventory([layer([File("app.jar", fat)])]).packages == ()


def test_a_broken_archive_gives_nothing_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    found = inventory([layer([File("app.jar", b"PK\x03\x04 not really a zip" * 10)])])
    assert found.packages == ()
    assert "java archive not readable" in caplog.text


def test_pom_properties_without_a_version_is_no_package() -> None:
    path = "META-INF/maven/g/a/pom.properties"
    broken = jar((path, b"groupId=g\nartifactId=a\n"))
    assert inventory([layer([File("a.jar", broken)])]).packages == ()
